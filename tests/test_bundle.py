"""`otpatch export` and `otpatch verify-bundle` (issue 12 items 3 and 4): a real dry run of
the shipped mGuard procedure against the simulator lab, exported as an evidence bundle and
checked as an auditor would, with public keys only; then every way the bundle can be
altered (a byte, a file removed or added, a manifest re-signed), every input that is no
bundle at all, and every export that must be refused with one line and no file."""
from __future__ import annotations

import contextlib
import gzip
import io
import json
import socket
import tarfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT, lab_keys
from otpatch.engine import bundle as B
from otpatch.engine.bundle_contents import MANIFEST, SIGNATURE, json_bytes
from otpatch.engine.bundle_inventory import secret_paths
from otpatch.engine.bundle_tar import tar_bytes
from otpatch.engine.approvals import canonical
from otpatch.engine.cli import main
from otpatch.modules.contract.canonical import sha256_hex

MGUARD = str(ROOT / "playbooks" / "mguard-firmware-update.yml")


@dataclass
class Site:
    """One otpatch host (its home and host key), the inventory an auditor trusts (its
    journal_hosts name the host key), and the mGuard run's bundle."""

    home: Path
    key: Path
    public_key: str
    keys: Path
    run_id: str = ""
    bundle: Path = Path()

    def __call__(self, *argv: str, key: bool = True, **env: str) -> tuple[int, str, str]:
        """`otpatch ARGV` in this process, as this host: (exit code, stdout, stderr)."""
        out, err = io.StringIO(), io.StringIO()
        with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(err):
            mp.setenv("OTPATCH_HOME", str(self.home))
            if key:
                mp.setenv("OTPATCH_HOST_KEY", str(self.key))
            else:
                mp.delenv("OTPATCH_HOST_KEY", raising=False)
            for name, value in env.items():
                mp.setenv(name, value)
            code = main(list(argv))
        return code, out.getvalue(), err.getvalue()

    def verify(self, path: Path, *extra: str, **kw) -> tuple[int, list[str], str]:
        code, out, err = self("verify-bundle", str(path), "--keys", str(self.keys), *extra, **kw)
        return code, out.splitlines(), err


def make_site(folder: Path) -> Site:
    folder.mkdir(parents=True, exist_ok=True)
    site = Site(folder / "home", folder / "host.key", "", folder / "site.yml")
    code, out, err = site("keygen", "--host", "-o", str(site.key), key=False)
    assert code == 0, err
    site.public_key = out.split("public_key: ")[1].split("}")[0]
    site.keys.write_text("all:\n  vars:\n    journal_hosts:\n"
                         f"      - {{name: otpatch-lab-1, public_key: {site.public_key}}}\n")
    return site


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Site:
    """One dry run of the mGuard procedure on the lab, exported once for every test."""
    from otpatch.engine.simlab import start_lab

    site = make_site(tmp_path_factory.mktemp("bundle"))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with start_lab(ROOT / "inventory" / "lab.yml", ephemeral=True,
                   out_dir=site.home.parent / "lab", syslog_to=f"127.0.0.1:{port}") as lab:
        code, out, err = site("run", MGUARD, "-i", str(lab.inventory), "--dry-run", "--json",
                              "-e", f"syslog_port={port}", "-e", "syslog_bind=127.0.0.1")
    assert code == 0, err
    site.run_id = json.loads(out)["run_id"]
    site.bundle = site.home.parent / "run.tar.gz"
    code, out, err = site("export", site.run_id, "-o", str(site.bundle))
    assert code == 0, err
    return site


def members(path: Path) -> tuple[str, dict[str, bytes]]:
    with tarfile.open(path, "r:gz") as tar:
        found = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    top = next(iter(found)).split("/")[0]
    return top, {name.split("/", 1)[1]: data for name, data in found.items()}


def repack(site: Site, files: dict[str, bytes], name: str = "altered.tar.gz") -> Path:
    top = f"otpatch-bundle-{site.run_id}"
    path = site.home.parent / name
    path.write_bytes(tar_bytes(B.Bundle(top, files, {}, 0, ())))
    return path


def resign(files: dict[str, bytes], key_path: Path) -> dict[str, bytes]:
    """The manifest listing the files as they now are, signed with the key at key_path."""
    from otpatch.engine.keys import load

    key = load(key_path, "key")
    manifest = json.loads(files[MANIFEST])
    manifest["files"] = {n: {"sha256": sha256_hex(b), "size": len(b)} for n, b in files.items()
                         if n not in (MANIFEST, SIGNATURE)}
    manifest["public_key"] = key.public_key
    return {**files, MANIFEST: json_bytes(manifest),
            SIGNATURE: key.sign(canonical(manifest)).encode() + b"\n"}


def failed(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("FAILED: ")]


# -- the intact bundle ----------------------------------------------------------------------------

def test_an_intact_bundle_holds_the_record_and_verifies_with_public_keys_only(site):
    top, files = members(site.bundle)
    run = site.run_id
    assert top == f"otpatch-bundle-{run}"
    profiles = sorted(n for n in files if n.startswith("profiles/"))
    # each firewall's as-found backup and its export after the update (reviewed, compared)
    assert sorted(Path(p).name.rsplit("-", 1)[0] for p in profiles) == [
        "lab-mguard-1-after", "lab-mguard-1-as_found", "prod-mguard-1-after",
        "prod-mguard-1-as_found"]
    assert sorted(files) == sorted([
        "approvals.json", "attestations.json", "firmware.json", f"inventory/{run}.json",
        f"journal/{run}.checkpoint.json", f"journal/{run}.jsonl", "manifest.json",
        "manifest.sig", "playbooks/mguard-firmware-update.yml", "profiles.json", *profiles,
        "report.html", "report.json", "report.md"])
    manifest = json.loads(files["manifest.json"])
    assert manifest["kind"] == "otpatch-bundle/1" and manifest["public_key"] == site.public_key
    assert set(manifest["files"]) == set(files) - {"manifest.json", "manifest.sig"}
    assert [(r["run_id"], r["status"], r["source"]) for r in manifest["runs"]] == [
        (run, "completed", "this journal")]
    lines = files[f"journal/{run}.jsonl"].decode().splitlines()
    assert json.loads(lines[0])["event_type"] == "run_started"
    assert json.loads(lines[-1])["seq"] == json.loads(files[f"journal/{run}.checkpoint.json"]
                                                      )["entries"]
    assert json.loads(files["report.json"])["runs"][0]["run_id"] == run
    assert json.loads(files["firmware.json"])[0]["algorithm"] == "md5"

    code, out, err = site("verify-bundle", str(site.bundle), "--keys", str(site.keys),
                          key=False)
    assert code == 0, out + err
    assert all(line.startswith("ok: ") for line in out.splitlines()[:-1]), out
    assert out.splitlines()[-1] == (f"verified: {site.bundle}: run {run}, signed by "
                                    "otpatch-lab-1")
    for name in ("manifest.sig", f"journal/{run}.jsonl", "approvals.json", "profiles.json",
                 "firmware.json", "report.html", "report.json", "report.md"):
        assert f"ok: {name}: " in out


def test_the_bundled_report_is_the_one_otpatch_report_writes(site, tmp_path):
    _, files = members(site.bundle)
    for fmt in ("json", "md", "html"):
        out = tmp_path / f"report.{fmt}"
        code, _, err = site("report", site.run_id, "--format", fmt, "-o", str(out))
        assert code == 0, err
        assert out.read_bytes() == files[f"report.{fmt}"], fmt


def test_the_tar_is_deterministic_and_plain(site):
    with tarfile.open(site.bundle, "r:gz") as tar:
        infos = tar.getmembers()
    names = [i.name for i in infos]
    assert names == sorted(names)
    ended = json.loads(members(site.bundle)[1][f"journal/{site.run_id}.jsonl"].decode()
                       .splitlines()[-1])["ts"]
    assert {(i.mode, i.uid, i.gid, i.type, i.mtime) for i in infos} == {
        (0o644, 0, 0, tarfile.REGTYPE, int(datetime.fromisoformat(ended).timestamp()))}
    raw = site.bundle.read_bytes()
    assert raw[4:8] == b"\0\0\0\0"  # gzip mtime 0
    top, files = members(site.bundle)
    again = tar_bytes(B.Bundle(top, files, {}, infos[0].mtime, ()))
    assert again == raw


def test_the_inventory_is_reduced_to_the_targets_and_holds_no_secret(site):
    doc = json.loads(members(site.bundle)[1][f"inventory/{site.run_id}.json"])
    assert doc["hosts"] == ["lab-mguard-1", "prod-mguard-1", "prod-x80-1", "prod-x80-2"]
    assert "reduced for the evidence bundle" in doc["reduced"]
    assert all(p.endswith("credentials.password_env") for p in doc["removed"])
    assert len(doc["removed"]) == 2
    text = json.dumps(doc["content"])
    assert "lab-plc-1" not in text and "password" not in text and "m580_cpus" not in text
    assert [a["name"] for a in doc["content"]["all"]["vars"]["approvers"]][0] == "Alice Chen"
    assert secret_paths(doc["content"]) == []


def test_export_warns_that_profiles_can_hold_secrets(site, tmp_path, caplog):
    code, out, err = site("export", site.run_id, "-o", str(tmp_path / "b.tar.gz"))
    assert code == 0, err
    assert out.startswith(f"{tmp_path / 'b.tar.gz'}: evidence bundle of run {site.run_id}, "
                          "completed: 15 files and the manifest, ")
    assert "4 mGuard profile backup(s) are in the bundle as they were saved" in caplog.text
    assert "--without-profiles" in caplog.text


def test_without_profiles_carries_their_hashes_only(site, tmp_path):
    out = tmp_path / "b.tar.gz"
    code, _, err = site("export", site.run_id, "-o", str(out), "--without-profiles")
    assert code == 0, err
    _, files = members(out)
    assert not [n for n in files if n.startswith("profiles/")]
    assert all(r["file"] is None and r["sha256"] for r in json.loads(files["profiles.json"]))
    code, lines, _ = site.verify(out)
    assert code == 0, lines
    assert sum(line.startswith("note: profile ") for line in lines) == 4


def test_verify_falls_back_to_this_hosts_own_key_and_without_any_key_does_not_verify(site):
    code, out, _ = site("verify-bundle", str(site.bundle))
    assert code == 0 and out.splitlines()[-1].endswith("signed by this host's own key")
    stranger = site.home.parent / "elsewhere"
    code, out, _ = site("verify-bundle", str(site.bundle), "--json", key=False,
                        OTPATCH_HOME=str(stranger))
    doc = json.loads(out)
    assert code == 3 and doc["verified"] is False and doc["signer"] is None
    assert [c["status"] for c in doc["checks"] if c["file"] == "manifest.sig"] == ["not checked"]
    code, out, _ = site("verify-bundle", str(site.bundle), key=False, OTPATCH_HOME=str(stranger))
    assert code == 3 and out.splitlines()[-1].endswith(
        "its signer was not checked (give --keys INVENTORY)")


# -- altered bundles: exit 3, naming the file ------------------------------------------------------

ALTERED = [  # id, the member (a prefix of its name; {run} is the run id)
    ("report.html", "report.html"), ("report.json", "report.json"), ("report.md", "report.md"),
    ("a journal line", "journal/{run}.jsonl"),
    ("the signed checkpoint", "journal/{run}.checkpoint.json"),
    ("a profile backup", "profiles/lab-mguard-1-"), ("profiles.json", "profiles.json"),
    ("firmware.json", "firmware.json"), ("approvals.json", "approvals.json"),
    ("attestations.json", "attestations.json"),
    ("the playbook", "playbooks/mguard-firmware-update.yml"),
    ("the inventory", "inventory/{run}.json"),
    ("the manifest", "manifest.json"), ("the manifest's signature", "manifest.sig"),
]


def pick(files: dict[str, bytes], prefix: str, run_id: str) -> str:
    return next(n for n in sorted(files) if n.startswith(prefix.format(run=run_id)))


@pytest.mark.parametrize("member", [a[1] for a in ALTERED], ids=[a[0] for a in ALTERED])
def test_one_altered_byte_fails_naming_the_file(site, member):
    _, files = members(site.bundle)
    name = pick(files, member, site.run_id)
    data = bytearray(files[name])
    at = len(data) // 2
    data[at] ^= 0x01
    code, lines, _ = site.verify(repack(site, {**files, name: bytes(data)}))
    assert code == 3, lines
    assert [f for f in failed(lines) if name in f], lines
    assert lines[-1].startswith("NOT verified: ")


REMOVED = ["report.md", "journal/{run}.checkpoint.json", "profiles/prod-mguard-1-",
           "approvals.json", "manifest.sig", "manifest.json"]


@pytest.mark.parametrize("member", REMOVED)
def test_a_removed_file_fails_naming_it(site, member):
    _, files = members(site.bundle)
    name = pick(files, member, site.run_id)
    code, lines, _ = site.verify(repack(site, {n: b for n, b in files.items() if n != name}))
    assert code == 3, lines
    assert [f for f in failed(lines) if f.startswith(f"FAILED: {name}: ")], lines


@pytest.mark.parametrize("added", ["notes.txt", "profiles/extra.atv", "journal/r-x.jsonl"])
def test_an_added_file_fails_naming_it(site, added):
    _, files = members(site.bundle)
    code, lines, _ = site.verify(repack(site, {**files, added: b"hello\n"}))
    assert code == 3
    assert f"FAILED: {added}: in the bundle, not in the manifest: added" in lines


def test_a_manifest_re_signed_with_a_key_the_inventory_does_not_list_fails_naming_it(
        site, tmp_path):
    from otpatch.engine import keys

    stranger = tmp_path / "stranger.key"
    public = keys.generate(stranger)
    _, files = members(site.bundle)
    profile = pick(files, "profiles/lab-mguard-1-", site.run_id)
    code, lines, _ = site.verify(repack(site, resign({**files, profile: b"mine"}, stranger)))
    assert code == 3
    assert (f"FAILED: manifest.sig: signed by {keys.short(public)}, a key the inventory does "
            "not trust (trusted: otpatch-lab-1)") in lines
    assert failed(lines)[0].startswith("FAILED: manifest.sig: ")


def edit_json(name: str, change):
    def edit(files: dict[str, bytes], run_id: str) -> tuple[dict[str, bytes], str]:
        member = name.format(run=run_id)
        doc = json.loads(files[member])
        change(doc)
        return {**files, member: json_bytes(doc)}, member
    return edit


def edit_line(files: dict[str, bytes], run_id: str) -> tuple[dict[str, bytes], str]:
    member = f"journal/{run_id}.jsonl"
    lines = files[member].decode().splitlines()
    entry = json.loads(lines[2])
    entry["payload"]["duration"] = 1.0
    lines[2] = json.dumps(entry)
    return {**files, member: ("\n".join(lines) + "\n").encode()}, member


def edit_profile(files: dict[str, bytes], run_id: str) -> tuple[dict[str, bytes], str]:
    member = pick(files, "profiles/lab-mguard-1-", run_id)
    return {**files, member: files[member].replace(b"SIM-PSK", b"SIM-PSX")}, member


INSIDER = [  # id, the edit (files, run id) -> (files, the member edited)
    ("a journal entry", edit_line),
    ("a profile backup", edit_profile),
    ("a firmware hash", edit_json("firmware.json", lambda d: d[0].update(hash="0" * 32))),
    ("a profile's recorded hash", edit_json("profiles.json",
                                            lambda d: d[0].update(sha256="0" * 64))),
    ("the inventory's hash", edit_json("inventory/{run}.json",
                                       lambda d: d.update(inventory_hash="sha256:" + "0" * 64))),
    ("the run's status", edit_json("manifest.json", lambda d: d["runs"][0].update(
        status="rolled_back"))),
]


@pytest.mark.parametrize("edit", [i[1] for i in INSIDER], ids=[i[0] for i in INSIDER])
def test_an_edit_re_signed_with_the_host_key_itself_is_caught_against_the_journal(site, edit):
    _, files = members(site.bundle)
    edited, member = edit(files, site.run_id)
    code, lines, _ = site.verify(repack(site, resign(edited, site.key)))
    assert code == 3, lines
    assert "ok: manifest.sig: signed by otpatch-lab-1" in lines[0]
    named = "journal/" if member == "manifest.json" else member
    assert [f for f in failed(lines) if named in f], lines


# -- not a bundle: exit 2, one line ----------------------------------------------------------------

def tar_with(site: Site, info: tarfile.TarInfo, data: bytes = b"") -> Path:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        info.size = len(data) if info.type == tarfile.REGTYPE else 0
        tar.addfile(info, io.BytesIO(data) if data else None)
    path = site.home.parent / "odd.tar.gz"
    path.write_bytes(out.getvalue())
    return path


def member_info(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


TOP = "otpatch-bundle-r-20261202T000000-000000"
UNREADABLE = [  # id, make(site) -> the file, what the line says
    ("truncated", lambda s: s.home.parent / "cut.tar.gz", "not a readable tar.gz"),
    ("not gzip", lambda s: s.keys, "not a gzip file"),
    ("gzip, not tar", lambda s: _write(s, gzip.compress(b"x" * 5000)), "not a readable tar.gz"),
    ("an absolute path", lambda s: tar_with(s, member_info("/etc/passwd"), b"x"),
     "is an absolute path or leaves"),
    ("a path out of the folder", lambda s: tar_with(s, member_info(f"{TOP}/../x"), b"x"),
     "is an absolute path or leaves"),
    ("a symbolic link", lambda s: tar_with(s, member_info(f"{TOP}/report.md", tarfile.SYMTYPE,
                                                          "/etc/passwd")),
     "is not a regular file"),
    ("a hard link", lambda s: tar_with(s, member_info(f"{TOP}/a", tarfile.LNKTYPE, "b")),
     "is not a regular file"),
    ("a device", lambda s: tar_with(s, member_info(f"{TOP}/dev", tarfile.CHRTYPE)),
     "is not a regular file"),
    ("a file outside any folder", lambda s: tar_with(s, member_info("manifest.json"), b"{}"),
     "is a file outside any folder"),
    ("another folder", lambda s: tar_with(s, member_info("backup/manifest.json"), b"{}"),
     "no otpatch-bundle-RUN_ID/ folder"),
]


def _write(site: Site, data: bytes) -> Path:
    path = site.home.parent / "odd.bin"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("make,says", [u[1:] for u in UNREADABLE], ids=[u[0] for u in UNREADABLE])
def test_a_file_that_is_no_bundle_is_one_line_exit_2(site, make, says):
    raw = site.bundle.read_bytes()
    (site.home.parent / "cut.tar.gz").write_bytes(raw[:len(raw) // 2])
    code, lines, err = site.verify(make(site))
    assert code == 2 and lines == [], lines
    assert len(err.splitlines()) == 1 and err.startswith("otpatch: verify-bundle ") and says in err


@pytest.mark.parametrize("bound,value,says", [("MAX_MEMBERS", 5, "more than 5 members"),
                                              ("MAX_MEMBER_BYTES", 4096, "larger than a bundle")])
def test_bounds_refuse_before_reading(site, monkeypatch, bound, value, says):
    from otpatch.engine import bundle_tar

    monkeypatch.setattr(bundle_tar, bound, value)
    code, lines, err = site.verify(site.bundle)
    assert code == 2 and lines == [] and says in err and len(err.splitlines()) == 1


def test_keys_naming_no_journal_host_is_one_line_exit_2(site):
    code, out, err = site("verify-bundle", str(site.bundle), "--keys",
                          str(ROOT / "inventory" / "lab.yml"))
    assert code == 2 and out == "" and "lists no all.vars.journal_hosts" in err


# -- exports that are refused: one line, no file ---------------------------------------------------

def refused(site: Site, out: Path, *argv: str, key: bool = True) -> str:
    code, stdout, err = site(*argv, key=key)
    assert code == 2 and stdout == "", err
    assert len(err.splitlines()) == 1 and err.startswith("otpatch: "), err
    assert not out.exists()
    assert not [p for p in out.parent.glob(f".{out.name}*")]  # no temporary file left
    return err


def test_bad_exports_are_one_line_exit_2_and_leave_no_file(site, tmp_path):
    out = tmp_path / "b.tar.gz"
    cases = [
        (("export", "r-20200101T000000-000000", "-o", str(out)),
         "no run 'r-20200101T000000-000000' in "),
        (("export", "nope", "-o", str(out)), "bad run id 'nope'"),
        (("export", "-o", str(out)), "give RUN_ID, or --change RUN_ID"),
        (("export", site.run_id, "--change", site.run_id, "-o", str(out)), "(not both)"),
    ]
    for argv, says in cases:
        assert says in refused(site, out, *argv)
    assert "make one with `otpatch keygen --host`" in refused(
        site, out, "export", site.run_id, "-o", str(out), key=False)
    missing = tmp_path / "no" / "such" / "b.tar.gz"
    assert "does not exist" in refused(site, missing, "export", site.run_id, "-o", str(missing))
    folder = tmp_path / "a-folder"
    folder.mkdir()
    err = refused(site, folder / "x", "export", site.run_id, "-o", str(folder))
    assert "not a regular file (a directory)" in err


def test_a_profile_changed_since_the_run_is_refused_naming_it(site, tmp_path):
    lab_entry = json.loads(members(site.bundle)[1]["profiles.json"])[0]
    path = Path(lab_entry["path"])
    saved = path.read_bytes()
    out = tmp_path / "b.tar.gz"
    try:
        path.write_bytes(saved + b"\n")
        err = refused(site, out, "export", site.run_id, "-o", str(out))
    finally:
        path.write_bytes(saved)
    assert f"the profile backup {path} (run {site.run_id}, entry #{lab_entry['entry']}) has " \
           "changed since it was saved" in err


# -- a change, a changed playbook, a damaged journal -----------------------------------------------

def test_a_change_bundle_carries_the_evidence_runs_and_refuses_a_changed_playbook(tmp_path):
    other = make_site(tmp_path / "host")
    playbook = tmp_path / "staged-change.yml"
    playbook.write_bytes((FIXTURES / "engine" / "staged-change.yml").read_bytes())
    common = [str(playbook), "--dry-run", "--json", "-e", f"device={tmp_path / 'd.json'}"]
    code, out, err = other("run", *common, "--stage", "lab")
    assert code == 0, err
    lab_run = json.loads(out)["run_id"]
    record = json.loads(other("status", lab_run, "--json")[1])["record_hash"]
    code, out, err = other("run", *common, "--stage", "staging", "--evidence", record)
    assert code == 0, err
    staging_run = json.loads(out)["run_id"]
    bundle = tmp_path / "change.tar.gz"
    code, out, err = other("export", "--change", staging_run, "-o", str(bundle))
    assert code == 0, err
    assert f"change {staging_run} (2 runs: {lab_run}, {staging_run})" in out
    _, files = members(bundle)
    assert {f"journal/{lab_run}.jsonl", f"journal/{staging_run}.jsonl"} <= set(files)
    assert json.loads(files["report.json"])["change"]["runs"] == [lab_run, staging_run]
    code, lines, _ = other.verify(bundle)
    assert code == 0 and lines[-1].endswith(f"change {staging_run}, signed by otpatch-lab-1")

    playbook.write_text(playbook.read_text() + "# a comment changes nothing it says\n")
    assert other("export", "--change", staging_run, "-o", str(bundle))[0] == 0
    playbook.write_text(playbook.read_text().replace("version: 1.0.0", "version: 1.0.1"))
    bundle.unlink()
    err = refused(other, bundle, "export", "--change", staging_run, "-o", str(bundle))
    assert f"the playbook of run {lab_run}: {playbook} has changed since the run started" in err


def test_an_evidence_run_imported_from_another_host_travels_with_its_own_signature(
        tmp_path, caplog):
    lab, plant = make_site(tmp_path / "lab"), make_site(tmp_path / "plant")
    both = tmp_path / "both.yml"
    both.write_text("all:\n  vars:\n    journal_hosts:\n"
                    f"      - {{name: lab-eng-1, public_key: {lab.public_key}}}\n"
                    f"      - {{name: plant-eng-1, public_key: {plant.public_key}}}\n")
    common = [str(FIXTURES / "engine" / "staged-change.yml"), "--dry-run", "--json",
              "-e", f"device={tmp_path / 'd.json'}"]
    code, out, err = lab("run", *common, "--stage", "lab")
    assert code == 0, err
    lab_run = json.loads(out)["run_id"]
    record = json.loads(lab("status", lab_run, "--json")[1])["record_hash"]
    assert lab("evidence", "export", lab_run, "-o", str(tmp_path / "lab.json"))[0] == 0
    assert plant("evidence", "import", str(tmp_path / "lab.json"), "-i", str(both))[0] == 0
    code, out, err = plant("run", *common, "-i", str(both), "--stage", "staging",
                           "--evidence", record)
    assert code == 0, err
    staging_run = json.loads(out)["run_id"]
    bundle = tmp_path / "change.tar.gz"
    code, out, err = plant("export", "--change", staging_run, "-o", str(bundle))
    assert code == 0, err
    manifest = json.loads(members(bundle)[1]["manifest.json"])
    assert [r["source"].split(" (")[0] for r in manifest["runs"]] == ["imported",
                                                                     "this journal"]
    code, out, _ = plant("verify-bundle", str(bundle), "--keys", str(both))
    lines = out.splitlines()
    assert code == 0, lines
    assert f"is signed by lab-eng-1 (journal/{lab_run}.checkpoint.json)" in lines[2]
    code, lines, _ = plant.verify(bundle)  # trusts plant-eng-1 only
    assert code == 3
    assert failed(lines) == [failed(lines)[0]] and failed(lines)[0].startswith(
        f"FAILED: journal/{lab_run}.checkpoint.json: the checkpoint: signed by a key the "
        "inventory does not trust")

    both.write_text(both.read_text() + "    siem: {host: 192.0.2.10}\n")  # not what it read
    assert plant("export", "--change", staging_run, "-o", str(bundle))[0] == 0
    assert f"left out: the inventory of run {staging_run}: {both} has changed since the " \
        "run started" in caplog.text
    assert f"inventory/{staging_run}.json" not in members(bundle)[1]
    code, out, _ = plant("verify-bundle", str(bundle), "--keys", str(both))
    assert code == 0 and out.splitlines()[-2].startswith(
        f"note: the inventory of run {staging_run}: left out at export: {both} has changed")


def test_export_from_a_damaged_journal_is_one_line_and_no_file(tmp_path):
    import sqlite3

    other = make_site(tmp_path / "host")
    code, out, err = other("run", str(FIXTURES / "engine" / "change-and-verify.yml"),
                           "--dry-run", "--json", "-e", f"device={tmp_path / 'd.json'}")
    assert code == 0, err
    run_id = json.loads(out)["run_id"]
    with sqlite3.connect(other.home / "journal.sqlite") as db:
        db.execute("DROP TRIGGER entries_no_update")
        db.execute("UPDATE entries SET ts = '2020-01-01T00:00:00+00:00' WHERE seq = 2")
    bundle = tmp_path / "b.tar.gz"
    code, stdout, err = other("export", run_id, "-o", str(bundle))
    assert code == 1 and stdout == "" and len(err.splitlines()) == 1, err
    assert "entry #2" in err and not bundle.exists()


# -- approvals and attestations: a signed execute run ----------------------------------------------

SIGNED_CHANGE = """\
apiVersion: otpatch/v1
kind: Playbook
metadata: {name: signed-change, version: 1.0.0}
initial: prepare
states:
  prepare:
    stage: lab
    do:
      - core.set_fact: {prepared: true}
    next: production_gate
  production_gate:
    stage: production
    requires:
      - signoff: {roles: [process_owner, ot_security_officer], over: prepare}
    do:
      - core.attest: {statement: The plant is told of the change, role: ot_security_officer}
    next: completed
"""


def test_a_signed_run_carries_its_approvals_and_attestation_and_refuses_while_awaiting(
        tmp_path, signed_lab):
    other = make_site(tmp_path / "host")
    people = lab_keys(tmp_path / "people", ("alice-chen", "bernd-maier"))
    playbook = tmp_path / "signed-change.yml"
    playbook.write_text(SIGNED_CHANGE)
    code, out, err = other("run", str(playbook), "-i", str(signed_lab), "--execute",
                           "--operator", "Chen Wei", "--json")
    assert code == 3, err
    run_id = json.loads(out)["run_id"]
    bundle = tmp_path / "signed.tar.gz"
    err = refused(other, bundle, "export", run_id, "-o", str(bundle))
    assert "the run has not ended (awaiting at prepare)" in err  # the gate into production_gate
    for person, role in (("alice-chen", "process_owner"), ("bernd-maier", "ot_security_officer")):
        code, _, err = other("approve", run_id, "--role", role, "--key", str(people[person]),
                             "--reason", f"{role} read the lab record")
        assert code == 0, err
    assert other("resume", run_id, "--operator", "Chen Wei")[0] == 3  # asks for a person
    assert other("attest", run_id, "--role", "ot_security_officer", "--key",
                 str(people["bernd-maier"]))[0] == 0
    code, _, err = other("resume", run_id, "--operator", "Chen Wei")
    assert code == 0, err
    code, _, err = other("export", run_id, "-o", str(bundle))
    assert code == 0, err
    _, files = members(bundle)
    approvals = json.loads(files["approvals.json"])
    assert [(a["event"], a["document"]["role"]) for a in approvals] == [
        ("approval_added", "process_owner"), ("approval_added", "ot_security_officer")]
    assert [a["document"]["role"] for a in json.loads(files["attestations.json"])] == [
        "ot_security_officer"]
    code, lines, _ = other.verify(bundle)
    assert code == 0, lines
    assert "ok: approvals.json: 2 signed approvals, each signature valid" in lines
    assert "ok: attestations.json: 1 signed attestations, each signature valid" in lines

    approvals[0]["document"]["reason"] = "never read anything"
    forged = {**files, "approvals.json": json_bytes(approvals)}
    path = tmp_path / "forged.tar.gz"
    path.write_bytes(tar_bytes(B.Bundle(f"otpatch-bundle-{run_id}", resign(forged, other.key),
                                        {}, 0, ())))
    code, lines, _ = other.verify(path)
    assert code == 3
    assert ("FAILED: approvals.json: does not match the approvals in the journal slices"
            in lines)
