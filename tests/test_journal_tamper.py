"""The journal anchored outside its file: a tamper test per case, each detected and named.

Real SQLite files, real child processes: a run signs the chain's head with the host key
(`otpatch keygen --host`), then the file is damaged the way a tamperer or an accident would
(an empty or foreign file, a cut tail with the head moved back, an edit re-hashed to the end,
a corrupt, truncated or deleted WAL, an edited payload, a checkpoint re-signed with another
key, a tail cut so carefully that only an exported list still knows). `journal verify`,
`status` and `resume` must name it, exit 1, print no traceback and change nothing."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT, child_env, otpatch_child, run_json
from otpatch.engine import keys
from otpatch.engine.anchor import (CHECKPOINT_EVENT, COPY_NAME, Anchor, SignedCheckpoint,
                                   export_lines, sign)
from otpatch.modules.contract.canonical import canonical_hash, canonical_json
from otpatch.engine.journal import FILENAME, Journal

CHANGE = str(FIXTURES / "engine" / "change-and-verify.yml")
GATED = str(FIXTURES / "engine" / "gated.yml")
RUN = "r-20261126T012233-3fa9c2"
REFUSED = "; run otpatch journal verify"


@pytest.fixture
def host_key(tmp_path) -> Path:
    path = tmp_path / "keys" / "host.key"
    path.parent.mkdir()
    keys.generate(path)
    return path


def signed_run(home: Path, tmp_path: Path, key: Path, *args: str) -> dict:
    """A dry run of the stand-in change, its head signed with `key` at its end."""
    done = otpatch_child(home, "run", CHANGE, "--dry-run", "--json", "-e",
                         f"device={tmp_path / 'device.json'}", *args, OTPATCH_HOST_KEY=str(key))
    doc = run_json(done)
    assert doc["status"] == "completed", done.stderr
    return doc


def verify(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return otpatch_child(home, "journal", "verify", *args, **env)


def problems(done: subprocess.CompletedProcess) -> list[str]:
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    return [line for line in done.stderr.splitlines() if line.startswith("otpatch: journal: ")]


def tamperer(home: Path) -> sqlite3.Connection:
    """Someone with write access to the file: the triggers dropped, autocommit."""
    conn = sqlite3.connect(home / FILENAME, isolation_level=None)
    for trigger in ("entries_no_update", "entries_no_delete", "head_forward_only"):
        conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    return conn


def rows(conn: sqlite3.Connection) -> list[tuple]:
    return conn.execute("SELECT seq, run_id, ts, source, category, event_type, result, "
                        "payload, prev_hash, hash, operator, host FROM entries ORDER BY seq"
                        ).fetchall()


def reseal(home: Path, edit_seq: int, change: dict, resign: keys.SigningKey | None = None
           ) -> None:
    """Edit one entry's payload, then re-hash it and every later entry and move the head:
    a chain stored in the file it protects cannot tell. With `resign`, also re-sign every
    chain checkpoint after the edit (and rewrite the copy) with that key."""
    conn = tamperer(home)
    hashes: dict[int, str] = {}
    copies = []
    prev = None
    for (seq, run_id, ts, source, category, event_type, result, text, prev_hash, _,
         operator, host) in rows(conn):
        payload = json.loads(text)
        if seq == edit_seq:
            payload.update(change)
        if event_type == CHECKPOINT_EVENT and resign is not None and seq > edit_seq:
            signed = sign(resign, payload["entries"], hashes[payload["entries"]])
            payload.update(signed.to_dict())
            copies.append(signed)
        prev_hash = prev or prev_hash
        digest = canonical_hash({"seq": seq, "run_id": run_id, "ts": ts, "source": source,
                                 "category": category, "event_type": event_type,
                                 "result": result, "payload": payload, "prev_hash": prev_hash,
                                 "operator": operator, "host": host})
        conn.execute("UPDATE entries SET payload = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                     (canonical_json(payload), prev_hash, digest, seq))
        hashes[seq] = prev = digest
    conn.execute("UPDATE head SET hash = ?", (prev,))
    conn.close()
    if resign is not None:
        (home / COPY_NAME).write_text(export_lines(copies))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- an empty file, a foreign file: refused, left as they are --------------------------------

READ_AND_WRITE = [["journal", "verify"], ["status"], ["status", RUN], ["resume", RUN],
                  ["journal", "checkpoints", "-o", "-"],
                  ["run", CHANGE, "--dry-run", "-e", "device=/nonexistent/d.json"]]
IDS = ["verify", "status", "status RUN", "resume", "checkpoints", "run"]


@pytest.mark.parametrize("args", READ_AND_WRITE, ids=IDS)
def test_a_zero_byte_journal_is_named_and_left_empty(home, args):
    home.mkdir(parents=True)
    (home / FILENAME).write_bytes(b"")
    done = otpatch_child(home, *args)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        f"otpatch: {home / FILENAME}: an empty file (0 bytes), not an otpatch journal: "
        "truncated, or not made by otpatch; left as it is"]
    assert (home / FILENAME).stat().st_size == 0
    assert sorted(p.name for p in home.iterdir() if p.name != "runs") == [FILENAME]


@pytest.mark.parametrize("args", READ_AND_WRITE, ids=IDS)
def test_a_foreign_sqlite_file_is_named_and_left_as_it_is(home, args):
    home.mkdir(parents=True)
    conn = sqlite3.connect(home / FILENAME)
    conn.executescript("CREATE TABLE readings (tag TEXT, value REAL);"
                       "INSERT INTO readings VALUES ('FT-101', 42.0);")
    conn.close()
    before = digest(home / FILENAME)
    done = otpatch_child(home, *args)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        f"otpatch: {home / FILENAME}: not an otpatch journal: it has no table 'entries' "
        "(its tables: readings); left as it is"]
    assert digest(home / FILENAME) == before
    conn = sqlite3.connect(f"file:{home / FILENAME}?mode=ro", uri=True)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # not switched to WAL
    conn.close()


# -- the chain rewritten inside the file ------------------------------------------------------

def test_a_deleted_tail_with_the_head_moved_back_is_named(home, tmp_path, host_key):
    doc = signed_run(home, tmp_path, host_key)
    assert verify(home).returncode == 0
    conn = tamperer(home)
    last = conn.execute("SELECT max(seq) FROM entries").fetchone()[0]
    conn.execute("DELETE FROM entries WHERE seq > ?", (last - 3,))  # run_ended, checkpoint...
    conn.execute("UPDATE head SET seq = ?, hash = (SELECT hash FROM entries WHERE seq = ?)",
                 (last - 3, last - 3))
    conn.close()
    done = verify(home)
    assert done.returncode == 1
    assert problems(done) == [
        f"otpatch: journal: {COPY_NAME} line 1: signed {last - 1} entries at "
        f"{json.loads((home / COPY_NAME).read_text())['signed_at']}, but the journal ends at "
        f"#{last - 3}: entries #{last - 2}-#{last - 1} deleted or lost (a cut tail, or a "
        "damaged or deleted WAL)"]
    status = otpatch_child(home, "status", doc["run_id"])
    assert status.returncode == 1 and status.stderr.rstrip().endswith(REFUSED)
    assert "deleted or lost" in status.stderr and "Traceback" not in status.stderr


def test_an_edited_entry_re_hashed_to_the_end_is_named(home, tmp_path, host_key):
    """The re-sealed chain is consistent link by link: only the signature tells."""
    doc = signed_run(home, tmp_path, host_key)
    reseal(home, 6, {"elapsed": 0.5})
    done = verify(home)
    assert done.returncode == 1
    found = problems(done)
    assert not any("hash does not match" in p or "prev_hash" in p for p in found), found
    assert any(p.startswith("otpatch: journal: entry #") and "chain_checkpoint): signed entry"
               in p and "edited and the chain re-hashed after it (re-sealed)" in p
               for p in found), found
    assert any(p.startswith(f"otpatch: journal: {COPY_NAME} line 1:") and "re-sealed" in p
               for p in found), found
    status = otpatch_child(home, "status")
    assert status.returncode == 1 and status.stderr.rstrip().endswith(REFUSED)
    assert doc["run_id"] not in status.stdout


def test_a_checkpoint_signed_by_a_key_the_inventory_does_not_trust_is_named(
        home, tmp_path, host_key, site_register):
    """Re-sealed and re-signed with the tamperer's own key, copy rewritten too: every
    signature verifies, but not by a journal host the site trusts."""
    trusted = keys.load(host_key, "host key")
    inventory = tmp_path / "site.yml"  # the lab's approvers, and the host key it trusts
    inventory.write_text((ROOT / "inventory" / "lab.yml").read_text().replace(
        "all:\n  vars:\n", "all:\n  vars:\n    journal_hosts:\n"
        f"      - {{name: eng-1, public_key: {trusted.public_key}}}\n", 1))
    site_register.sign(inventory)  # an execute run needs the site register signed
    paused = otpatch_child(home, "run", GATED, "-i", str(inventory), "--execute", "--json",
                           OTPATCH_HOST_KEY=str(host_key))
    assert paused.returncode == 3, paused.stderr
    run_id = run_json(paused)["run_id"]
    assert verify(home, "-i", str(inventory)).returncode == 0
    forger = tmp_path / "keys" / "forger.key"
    keys.generate(forger)
    reseal(home, 3, {"elapsed": 0.25}, resign=keys.load(forger, "key"))
    unchecked = verify(home)
    assert unchecked.returncode == 0  # no trust root at all: a forger's chain looks whole
    assert "note: signers not checked" in unchecked.stdout
    forged = keys.short(keys.load(forger, "key").public_key)
    for args, extra, root, names in (
            (["-i", str(inventory)], {}, "the inventory", "eng-1"),
            ([], {"OTPATCH_HOST_KEY": str(host_key)}, "this host", "this host's own key")):
        done = verify(home, *args, **extra)
        assert done.returncode == 1
        found = problems(done)
        assert found and all(f"signed by a key {root} does not trust ({forged}; trusted: "
                             f"{names})" in p for p in found), found
    entries = json.loads((home / COPY_NAME).read_text())["entries"]
    resumed = otpatch_child(home, "resume", run_id, OTPATCH_HOST_KEY=str(host_key))
    assert resumed.returncode == 1, resumed.stderr
    assert resumed.stderr.splitlines() == [
        f"otpatch: resume {run_id}: refused: the journal {home / FILENAME} is not trusted: "
        f"its checkpoint of {entries} entries is signed by a key the inventory does not trust "
        f"({forged}){REFUSED}"]
    status = otpatch_child(home, "status", run_id, OTPATCH_HOST_KEY=str(host_key))
    assert status.returncode == 1 and "signed by a key this host does not trust" in status.stderr


# -- committed entries lost with the WAL ------------------------------------------------------

WAL_CHILD = textwrap.dedent(f"""
    import os, signal, sys
    from pathlib import Path
    from otpatch.engine import keys
    from otpatch.engine.anchor import Anchor
    from otpatch.engine.journal import Journal
    home = Path(sys.argv[1])
    journal = Journal.open(home)
    journal.anchor_with(Anchor(keys.host_key(home)))
    for i in range(30):
        journal.append("{RUN}", source="module:test", category="module", event_type="tick",
                       result="info", payload={{"i": i, "elapsed": 0.0}})
    journal.checkpoint_run_end("{RUN}")
    os.kill(os.getpid(), signal.SIGKILL)  # still open: the WAL is not folded into the file
""")


def damage_wal(home: Path, how: str) -> None:
    wal = home / (FILENAME + "-wal")
    if how == "corrupt":  # one byte of the first frame's page
        with wal.open("r+b") as f:
            f.seek(32 + 24 + 100)
            byte = f.read(1)
            f.seek(32 + 24 + 100)
            f.write(bytes([byte[0] ^ 0xFF]))
    elif how == "truncate":  # to its first frame
        os.truncate(wal, 32 + 24 + 4096)
    else:
        wal.unlink()
        (home / (FILENAME + "-shm")).unlink()


@pytest.mark.slow
@pytest.mark.parametrize("how,named", [
    ("corrupt", ["journal.sqlite-wal: frame 1 is damaged (its checksum fails)",
                 f"{COPY_NAME} line 1: signed 30 entries"]),
    ("truncate", [f"{COPY_NAME} line 1: signed 30 entries"]),
    ("delete", [f"{COPY_NAME} line 1: signed 30 entries"]),
], ids=["corrupt frame", "truncated", "deleted"])
def test_a_wal_that_lost_committed_entries_is_named(home, tmp_path, host_key, how, named):
    home.mkdir(parents=True)
    os.link(host_key, home / keys.HOST_KEY_FILE)
    child = subprocess.run([sys.executable, "-c", WAL_CHILD, str(home)], env=child_env(home),
                           timeout=60)
    assert child.returncode == -signal.SIGKILL
    alone = tmp_path / "alone" / FILENAME  # the main file without its WAL: entries still there?
    alone.parent.mkdir()
    alone.write_bytes((home / FILENAME).read_bytes())
    assert sqlite3.connect(alone).execute("SELECT count(*) FROM entries").fetchone()[0] < 30
    assert verify(home).returncode == 0  # the WAL intact: all 31 entries read
    damage_wal(home, how)
    before = digest(home / FILENAME)
    done = verify(home)
    assert done.returncode == 1
    found = problems(done)
    for text in named:
        assert any(text in p for p in found), (text, found)
    assert any("deleted or lost (a cut tail, or a damaged or deleted WAL)" in p for p in found)
    status = otpatch_child(home, "status")
    assert status.returncode == 1 and status.stderr.rstrip().endswith(REFUSED)
    assert digest(home / FILENAME) == before  # nothing folded, nothing rewritten


# -- an edited payload: resume and status refuse before they fold -----------------------------

@pytest.mark.parametrize("change", [
    "replace(payload, '\"index\":0', '\"index\":\"zero\"')",
    "'{}'",
], ids=["wrong type", "emptied"])
def test_an_edited_payload_makes_resume_and_status_refuse_cleanly(home, host_key, change):
    paused = otpatch_child(home, "run", GATED, "--execute", "--json",
                           OTPATCH_HOST_KEY=str(host_key))
    assert paused.returncode == 3, paused.stderr
    run_id = run_json(paused)["run_id"]
    conn = tamperer(home)
    conn.execute(f"UPDATE entries SET payload = {change} WHERE event_type = 'step_result'")
    count = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
    conn.close()
    for args in (["resume", run_id], ["status", run_id], ["status"], ["status", "--json"]):
        done = otpatch_child(home, *args, OTPATCH_HOST_KEY=str(host_key))
        assert done.returncode == 1, (args, done.stderr)
        (line,) = done.stderr.splitlines()
        assert line.endswith(REFUSED) and "Traceback" not in done.stderr, line
        assert "(run " in line and "step_result): " in line and "(edited)" in line, line
    conn = sqlite3.connect(home / FILENAME)
    assert conn.execute("SELECT count(*) FROM entries").fetchone()[0] == count  # no resume
    conn.close()


# -- what has left the host: exported lists and the SIEM ---------------------------------------

def test_against_an_exported_list_and_the_siems_copy_the_file_no_longer_reaches(
        home, tmp_path, host_key):
    """A careful tamperer cuts the tail and rewrites the copy beside the journal too: the
    file then checks out on its own; what was exported, or sent to the SIEM, does not."""
    from otpatch.modules.syslog.receiver import SyslogReceiver

    with SyslogReceiver("127.0.0.1", 0, time.time) as siem:
        inventory = tmp_path / "site.yml"
        inventory.write_text(f"all:\n  vars:\n    siem: {{host: 127.0.0.1, port: {siem.port}}}\n")
        signed_run(home, tmp_path, host_key, "-i", str(inventory))
        signed_run(home, tmp_path, host_key, "-i", str(inventory))
        messages = siem.drain(grace=1.0)
    assert len(messages) == 2
    assert all(m.text.startswith("<110>1 ") and " otpatch " in m.text
               and " chain_checkpoint [otpatch@32473 entries=" in m.text for m in messages)
    siem_log = tmp_path / "siem.log"
    siem_log.write_text("".join(m.text + "\n" for m in messages))
    exported = tmp_path / "exported.jsonl"
    done = otpatch_child(home, "journal", "checkpoints", "-o", str(exported))
    assert done.returncode == 0 and done.stdout.startswith(f"{exported}: 2 signed checkpoint(s)")
    assert verify(home, "--against", str(exported)).returncode == 0
    assert verify(home, "--against", str(siem_log)).returncode == 0
    first, second = [json.loads(line) for line in exported.read_text().splitlines()]
    conn = tamperer(home)
    conn.execute("DELETE FROM entries WHERE seq > ?", (first["entries"] + 1,))
    conn.execute("UPDATE head SET seq = ?, hash = (SELECT hash FROM entries WHERE seq = ?)",
                 (first["entries"] + 1, first["entries"] + 1))
    conn.close()
    (home / COPY_NAME).write_text(export_lines([SignedCheckpoint.from_dict(first)]))
    assert verify(home).returncode == 0  # on its own, the cut journal checks out
    for against in (exported, siem_log):
        done = verify(home, "--against", str(against))
        assert done.returncode == 1
        assert problems(done) == [
            f"otpatch: journal: {against} line 2: signed {second['entries']} entries at "
            f"{second['signed_at']}, but the journal ends at #{first['entries'] + 1}: entries "
            f"#{first['entries'] + 2}-#{second['entries']} deleted or lost (a cut tail, or a "
            "damaged or deleted WAL)"]


# -- the host key and the anchoring itself -----------------------------------------------------

def test_keygen_host_writes_a_0600_key_once_and_prints_its_inventory_line(home, tmp_path):
    key = tmp_path / "host.key"
    done = otpatch_child(home, "keygen", "--host", "-o", str(key))
    assert done.returncode == 0, done.stderr
    assert (key.stat().st_mode & 0o777) == 0o600
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    line = done.stdout.splitlines()[-1]
    assert line.startswith("  - {name: ") and "public_key: " in line
    inventory = tmp_path / "site.yml"
    inventory.write_text(f"all:\n  vars:\n    journal_hosts:\n  {line}\n")
    assert otpatch_child(home, "validate", "-i", str(inventory)).returncode == 0
    before = key.read_bytes()
    again = otpatch_child(home, "keygen", "--host", "-o", str(key))
    assert again.returncode == 2 and "already exists; not overwritten" in again.stderr
    assert key.read_bytes() == before


def test_a_host_key_readable_by_others_or_not_trusted_stops_the_run_before_it_starts(
        home, tmp_path, host_key):
    os.chmod(host_key, 0o644)
    done = otpatch_child(home, "run", CHANGE, "--dry-run", "-e", "device=/nonexistent/x",
                         OTPATCH_HOST_KEY=str(host_key))
    assert done.returncode == 2 and f"chmod 600 {host_key}" in done.stderr
    os.chmod(host_key, 0o600)
    other = tmp_path / "keys" / "other.key"
    keys.generate(other)
    inventory = tmp_path / "site.yml"
    inventory.write_text("all:\n  vars:\n    journal_hosts:\n      - {name: eng-1, "
                         f"public_key: {keys.load(other, 'key').public_key}}}\n")
    done = otpatch_child(home, "run", CHANGE, "--dry-run", "-i", str(inventory), "-e",
                         "device=/nonexistent/x", OTPATCH_HOST_KEY=str(host_key))
    assert done.returncode == 2 and "is not among the journal hosts" in done.stderr
    assert not (home / FILENAME).exists()


def test_without_a_host_key_the_journal_says_it_is_unanchored(home, tmp_path):
    done = otpatch_child(home, "run", CHANGE, "--dry-run", "-e", f"device={tmp_path / 'd'}")
    assert done.returncode == 0, done.stderr
    assert [line for line in done.stderr.splitlines() if "unanchored" in line] == [
        line for line in done.stderr.splitlines() if line.startswith(
            "otpatch: WARNING: journal unanchored: no host key")]
    assert done.stderr.count("journal unanchored") == 1
    checked = verify(home)
    assert checked.returncode == 0 and "note: unanchored: no signed checkpoint" in checked.stdout
    assert not (home / COPY_NAME).exists()


def test_every_100_entries_and_at_the_end_the_head_is_signed(tmp_path, host_key):
    with Journal.open(tmp_path) as journal:
        journal.anchor_with(Anchor(keys.load(host_key, "host key")))
        for i in range(250):
            journal.append(RUN, source="module:test", category="module", event_type="tick",
                           result="info", payload={"i": i, "elapsed": 0.0})
            journal.checkpoint_if_due(RUN)
        journal.checkpoint_run_end(RUN)
        marks = [e for e in journal.entries() if e.event_type == CHECKPOINT_EVENT]
        quick = journal.verify_quick([RUN])
        full = journal.verify()
    assert [(m.seq, m.payload["entries"], m.payload["why"]) for m in marks] == [
        (101, 100, "interval"), (202, 201, "interval"), (253, 252, "run_end")]
    copies = (tmp_path / COPY_NAME).read_text().splitlines()
    assert [json.loads(c)["entries"] for c in copies] == [100, 201, 252]
    assert full.ok and full.checkpoints == 3 and full.anchored == 252, full.problems
    assert quick.ok and quick.entries_checked == 2  # entry #252 and the checkpoint after it


def test_duplicate_journal_hosts_are_one_problem_each(home, tmp_path, host_key):
    public = keys.load(host_key, "host key").public_key
    inventory = tmp_path / "site.yml"
    inventory.write_text("all:\n  vars:\n    journal_hosts:\n"
                         f"      - {{name: eng-1, public_key: {public}}}\n"
                         f"      - {{name: eng-2, public_key: {public}}}\n"
                         f"      - {{name: eng-1, public_key: {public}}}\n")
    done = otpatch_child(home, "validate", "-i", str(inventory))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"{inventory}:5:9: [journal-host-duplicate] journal host "
        "eng-2: the same public key as journal host #1 (eng-1)",
        f"{inventory}:6:9: [journal-host-duplicate] journal host "
        "eng-1: the same name as journal host #1 (eng-1)"]
