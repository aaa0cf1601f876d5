"""A run's record travels as evidence (issue 11 item 6): exported from the journal of the
host that ran it, verified and stored on another host, found there by its record hash.

Real journals in tmp_path, real host keys (`otpatch keygen --host`), real dry runs of a
target-less fixture playbook in child processes. Two homes stand for two hosts: "lab"
ran the evidence run; "plant" has its own journal and key and imports the record."""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from conftest import FIXTURES, otpatch_child, run_json
from otpatch.engine.anchor import Trust, trusted_keys
from otpatch.engine.evidence_store import FoundRun, find_run, plain
from otpatch.engine.inventory import load_inventory
from otpatch.engine.journalfile import Entry
from otpatch.engine.record import RunStatus, fold
from otpatch.modules.contract.errors import InputError

CHANGE = str(FIXTURES / "engine" / "change-and-verify.yml")


@dataclass
class Host:
    """One otpatch host: its home (journal), its host key, its line for journal_hosts."""

    home: Path
    key: Path
    public_key: str

    def __call__(self, *args: str, **env: str):
        return otpatch_child(self.home, *args, OTPATCH_HOST_KEY=str(self.key), **env)

    def dry_run(self, tmp_path: Path, **env: str) -> str:
        done = self("run", CHANGE, "--dry-run", "--json", "-e",
                    f"device={tmp_path / 'device.json'}", **env)
        doc = run_json(done)
        assert doc["status"] == "completed", done.stderr
        return doc["run_id"]

    def record(self, run_id: str) -> str:
        return run_json(self("status", run_id, "--json"))["record_hash"]


def make_host(tmp_path: Path, name: str) -> Host:
    home, key = tmp_path / name, tmp_path / f"{name}.key"
    done = otpatch_child(home, "keygen", "--host", "-o", str(key))
    assert done.returncode == 0, done.stderr
    public = done.stdout.strip().splitlines()[-1].split("public_key: ")[1].rstrip("}")
    return Host(home, key, public)


def inventory(tmp_path: Path, *hosts: tuple[str, str]) -> Path:
    path = tmp_path / "site.yml"
    lines = "".join(f"      - {{name: {n}, public_key: {k}}}\n" for n, k in hosts)
    path.write_text(f"all:\n  vars:\n    journal_hosts:\n{lines}")
    return path


def trust_of(path: Path) -> Trust:
    return Trust(trusted_keys(load_inventory(str(path))), "the inventory")


@pytest.fixture
def lab(tmp_path) -> Host:
    return make_host(tmp_path, "lab")


@pytest.fixture
def plant(tmp_path) -> Host:
    host = make_host(tmp_path, "plant")
    host.dry_run(tmp_path)  # a journal of its own, with a run of its own
    return host


@pytest.fixture
def exported(lab, tmp_path) -> tuple[str, str, Path]:
    """(run id, record hash, export file) of a lab run, another lab run after it."""
    run_id = lab.dry_run(tmp_path)
    lab.dry_run(tmp_path)
    out = tmp_path / "evidence.json"
    done = lab("evidence", "export", run_id, "-o", str(out))
    assert done.returncode == 0, done.stderr
    return run_id, lab.record(run_id), out


def edited(path: Path, change) -> Path:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc, indent=2))
    return path


def folded(found: FoundRun):
    return fold(found.run_id, found.entries)


# -- the round trip -------------------------------------------------------------------------

def test_an_exported_record_imports_on_another_host_and_is_found_there(
        lab, plant, exported, tmp_path):
    run_id, record, out = exported
    site = inventory(tmp_path, ("lab-eng-1", lab.public_key), ("plant-eng-1", plant.public_key))
    assert record.startswith("sha256:") and len(record) == 71
    doc = json.loads(out.read_text())
    assert doc["kind"] == "otpatch-evidence/1" and doc["record_hash"] == record
    assert doc["checkpoint"]["entries"] == doc["entries"][-1]["seq"]
    assert {e["run_id"] for e in doc["entries"]} == {run_id, doc["entries"][-1]["run_id"]}
    assert all({"operator", "host", "hash", "prev_hash"} <= set(e) for e in doc["entries"])

    done = plant("evidence", "import", str(out), "-i", str(site))
    assert done.returncode == 0, done.stderr
    stored = plant.home / "evidence" / f"{plain(record)}.json"
    assert done.stdout.strip() == (
        f"imported: run {run_id} (change-and-verify 1.0.0, dry_run, completed), record "
        f"{record}, signed by lab-eng-1: {stored}")
    again = plant("evidence", "import", str(out), "-i", str(site))
    assert again.returncode == 0 and again.stdout.startswith("already imported: ")

    found = find_run(plant.home, record, trust_of(site))
    assert found is not None and found.verified and found.problems == ()
    assert found.run_id == run_id and found.record_hash == plain(record)
    assert found.source == f"imported from lab-eng-1 ({stored})"
    assert {e.run_id for e in found.entries} == {run_id}
    assert found.entries[0].event_type == "run_started"
    assert found.entries[-1].event_type == "run_ended" and found.entries[-1].hash == plain(record)
    assert all(isinstance(e, Entry) for e in found.entries)
    progress = folded(found)
    assert progress.status is RunStatus.COMPLETED and progress.state == "completed"
    listed = plant("evidence", "list", "-i", str(site))
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0].startswith(f"{run_id}  completed   dry_run  "
                                                    "change-and-verify 1.0.0  ended ")
    assert listed.stdout.splitlines()[0].endswith("signed by lab-eng-1")
    assert listed.stdout.splitlines()[1] == f"  record {record}"


def test_a_run_of_this_journal_is_found_by_its_record_hash_in_either_form(lab, tmp_path):
    first = lab.dry_run(tmp_path)
    second = lab.dry_run(tmp_path)  # signs a newer checkpoint: the first run lies before it
    for run_id in (first, second):
        record = lab.record(run_id)
        for form in (record, plain(record), record.upper()):
            found = find_run(lab.home, form, None)
            assert found is not None and found.source == "this journal"
            assert (found.run_id, found.verified, found.problems) == (run_id, True, ())
            assert folded(found).status is RunStatus.COMPLETED
    status = lab("status", first).stdout
    assert f"record {lab.record(first)} (otpatch evidence export {first} -o FILE" in status


def test_a_local_run_with_an_entry_deleted_before_the_newest_checkpoint_does_not_verify(
        lab, tmp_path):
    """The quick check walks from the newest checkpoint only; a run before it gets the
    full walk, which finds the gap."""
    import sqlite3

    first = lab.dry_run(tmp_path)
    lab.dry_run(tmp_path)
    record = lab.record(first)
    conn = sqlite3.connect(lab.home / "journal.sqlite", isolation_level=None)
    conn.execute("DROP TRIGGER entries_no_delete")
    conn.execute("DELETE FROM entries WHERE seq = 5")
    conn.close()
    found = find_run(lab.home, record, None)
    assert found is not None and found.source == "this journal" and not found.verified
    assert "entry #5 missing (seq gap)" in found.problems


def test_trusted_keys_serve_as_the_trust_and_an_unknown_hash_is_found_nowhere(
        lab, plant, exported, tmp_path):
    _, record, out = exported
    site = inventory(tmp_path, ("lab-eng-1", lab.public_key))
    assert plant("evidence", "import", str(out), "-i", str(site)).returncode == 0
    found = find_run(plant.home, record, trusted_keys(load_inventory(str(site))))
    assert found is not None and found.verified
    assert find_run(plant.home, "sha256:" + "ab" * 32, trust_of(site)) is None
    assert find_run(tmp_path / "nowhere", record, trust_of(site)) is None
    with pytest.raises(InputError, match="record hash 'sha256:12': expected sha256:<64 hex"):
        find_run(plant.home, "sha256:12", trust_of(site))


# -- refused on import: one line, exit 2, nothing stored --------------------------------------

def _payload(doc):
    doc["entries"][2]["payload"]["elapsed"] = 99.0


def _relinked(doc):
    """An entry's prev_hash changed and its own hash re-computed: only the link breaks."""
    e = doc["entries"][3]
    e["prev_hash"] = "1" * 64
    entry = Entry(**e)
    from otpatch.modules.contract.canonical import canonical_hash

    e["hash"] = canonical_hash(entry.content())


def _signature(doc):
    sig = doc["checkpoint"]["signature"]
    doc["checkpoint"]["signature"] = ("A" if sig[0] != "A" else "B") + sig[1:]


def _dropped(doc):
    del doc["entries"][4]


def _cut(doc):
    doc["entries"].pop()


def _operator(doc):
    doc["entries"][1]["operator"] = "Mallory"


TAMPERED = [
    (_payload, "entry #3 (run {run}, checkpoint): hash does not match its content (edited)"),
    (_relinked, "entry #4: prev_hash does not match entry #3 (edited, reordered or replaced)"),
    (_signature, "the checkpoint: the signature does not verify"),
    (_dropped, "entry #6 follows #4: entries missing or reordered"),
    # the export ends at the checkpoint its run's end signed: cut short, the record is gone
    (_cut, "it holds no run_ended entry of run {run}: not an ended run's record (and 1 more "
           "problem)"),
    (_operator, "entry #2 (run {run}, "),
]


@pytest.mark.parametrize("change,named", TAMPERED, ids=[
    "payload edited", "prev_hash changed", "signature changed", "entry dropped",
    "span cut short", "operator edited"])
def test_a_tampered_export_is_refused_and_nothing_is_stored(lab, plant, exported, tmp_path,
                                                            change, named):
    run_id, _, out = exported
    last = json.loads(out.read_text())["checkpoint"]["entries"]
    site = inventory(tmp_path, ("lab-eng-1", lab.public_key))
    done = plant("evidence", "import", str(edited(out, change)), "-i", str(site))
    assert done.returncode == 2, done.stdout
    line = f"otpatch: evidence import {out}: refused, nothing stored: "
    assert done.stderr.startswith(line) and len(done.stderr.splitlines()) == 1, done.stderr
    assert named.format(run=run_id, last=last, before=last - 1) in done.stderr
    assert not (plant.home / "evidence").exists()


def test_an_export_signed_by_a_host_the_site_does_not_trust_is_refused(
        lab, plant, exported, tmp_path):
    _, _, out = exported
    site = inventory(tmp_path, ("plant-eng-1", plant.public_key))
    done = plant("evidence", "import", str(out), "-i", str(site))
    assert done.returncode == 2
    assert "the checkpoint: signed by a key the inventory does not trust" in done.stderr
    assert "trusted: plant-eng-1" in done.stderr
    assert not (plant.home / "evidence").exists()


@pytest.mark.parametrize("text,named", [
    ("[1, 2]", 'not an otpatch evidence export (no "kind": "otpatch-evidence/1")'),
    ('{"kind": "otpatch-evidence/1", "entries": []}', "its \"entries\" is not a list"),
    ("{not json", "not JSON"),
], ids=["a list", "no entries", "not JSON"])
def test_a_file_that_is_no_export_is_refused(lab, plant, tmp_path, text, named):
    site = inventory(tmp_path, ("lab-eng-1", lab.public_key))
    path = tmp_path / "other.json"
    path.write_text(text)
    done = plant("evidence", "import", str(path), "-i", str(site))
    assert done.returncode == 2 and named in done.stderr, done.stderr
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr
    assert not (plant.home / "evidence").exists()


def test_without_journal_hosts_or_a_key_the_import_says_what_to_give(exported, tmp_path):
    _, _, out = exported
    done = otpatch_child(tmp_path / "bare", "evidence", "import", str(out))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"otpatch: evidence import {out}: refused, nothing stored: no journal hosts to check "
        "its signer against: give -i INVENTORY (its all.vars.journal_hosts)")


# -- a stored record edited after import ----------------------------------------------------

@pytest.mark.parametrize("change,named", [
    (_payload, "hash does not match its content (edited)"),
    (_signature, "the checkpoint: the signature does not verify"),
], ids=["payload", "signature"])
def test_a_stored_record_edited_after_import_is_reported_by_the_lookup(
        lab, plant, exported, tmp_path, change, named):
    _, record, out = exported
    site = inventory(tmp_path, ("lab-eng-1", lab.public_key))
    assert plant("evidence", "import", str(out), "-i", str(site)).returncode == 0
    edited(plant.home / "evidence" / f"{plain(record)}.json", change)
    found = find_run(plant.home, record, trust_of(site))
    assert found is not None and not found.verified
    assert any(named in p for p in found.problems), found.problems
    listed = plant("evidence", "list", "-i", str(site)).stdout
    assert "  not verified: " in listed and named in listed


def test_a_stored_record_whose_signer_is_no_longer_trusted_does_not_verify(
        lab, plant, exported, tmp_path):
    _, record, out = exported
    site = inventory(tmp_path, ("lab-eng-1", lab.public_key))
    assert plant("evidence", "import", str(out), "-i", str(site)).returncode == 0
    now = trust_of(inventory(tmp_path, ("plant-eng-1", plant.public_key)))
    found = find_run(plant.home, record, now)
    assert found is not None and not found.verified
    assert any("does not trust" in p for p in found.problems)
    assert not find_run(plant.home, record, None).verified  # no trust: the signer unchecked


# -- export refusals --------------------------------------------------------------------------

def test_exporting_a_run_that_has_not_ended_is_refused(lab, tmp_path):
    killed = lab("run", CHANGE, "--dry-run", "-e", f"device={tmp_path / 'd.json'}",
                 OTPATCH_FAULT_KILL="after:4")
    assert killed.returncode != 0
    run_id = run_json(lab("status", "--json"))["runs"][-1]["run_id"]
    out = tmp_path / "out.json"
    done = lab("evidence", "export", run_id, "-o", str(out))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"otpatch: evidence export {run_id}: the run has not ended (interrupted at change): "
        "only an ended run's record travels")
    assert not out.exists()


def test_exporting_from_an_unanchored_journal_is_refused(tmp_path):
    home = tmp_path / "unanchored"
    done = otpatch_child(home, "run", CHANGE, "--dry-run", "--json", "-e",
                         f"device={tmp_path / 'd.json'}")
    run_id = run_json(done)["run_id"]
    out = tmp_path / "out.json"
    done = otpatch_child(home, "evidence", "export", run_id, "-o", str(out))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"otpatch: evidence export {run_id}: the run is not covered by a signed checkpoint: "
        "this host signs none (no host key): make one with `otpatch keygen --host`; the next "
        "run's end then signs the journal")
    assert not out.exists()


def test_a_run_ended_before_the_host_had_a_key_waits_for_the_next_signed_end(tmp_path):
    home = tmp_path / "later"
    early = run_json(otpatch_child(home, "run", CHANGE, "--dry-run", "--json", "-e",
                                   f"device={tmp_path / 'd.json'}"))["run_id"]
    key = tmp_path / "later.key"
    assert otpatch_child(home, "keygen", "--host", "-o", str(key)).returncode == 0
    out = tmp_path / "out.json"
    done = otpatch_child(home, "evidence", "export", early, "-o", str(out),
                         OTPATCH_HOST_KEY=str(key))
    assert done.returncode == 2
    assert "the run is not covered by a signed checkpoint yet (it ended at #13, there is " \
           "none yet): the next run's end on this host signs one" in done.stderr
    host = Host(home, key, "")
    host.dry_run(tmp_path)
    done = host("evidence", "export", early, "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "(13 of other runs)" in done.stdout


def test_the_found_run_api_is_frozen():
    found = FoundRun("r-20261126T012233-3fa9c2", "ab" * 32, (), "this journal", True, ())
    with pytest.raises(AttributeError):
        found.verified = False  # type: ignore[misc]
    assert replace(found, verified=False).verified is False
