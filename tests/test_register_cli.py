"""`otpatch register sign | verify | show` as a user runs them (child processes, real keys):
signing twice by the same person replaces, a changed register drops the older signatures
and says so, verify lists what is trusted and exits 0 only when valid, and every bad input
is one line, exit 2, nothing written."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from otpatch.engine.siteregister import register_file

from conftest import otpatch_child, run_json
from test_site_register import INSTALL, RELABEL, UNSIGNED, edit, lab_key

def sign(home: Path, lab_inventory: Path, key: Path | str, role: str):
    return otpatch_child(home, "register", "sign", "-i", str(lab_inventory), "--key", str(key),
                         "--role", role)


def test_sign_twice_then_verify_says_who_signed_and_exits_0(home, site_register, lab_inventory):
    bernd, alice = site_register.keys["bernd-maier"], site_register.keys["alice-chen"]
    first = sign(home, lab_inventory, bernd, "ot_security_officer")
    assert first.returncode == 0, first.stderr
    file = register_file(lab_inventory)
    assert first.stdout.splitlines()[0].startswith(f"signed: {file} by Bernd Maier as "
                                                   "ot_security_officer (register sha256:")
    assert first.stdout.splitlines()[1] == (f"{UNSIGNED}{file} has no signature as "
                                            "process_owner that counts (Bernd Maier as "
                                            "ot_security_officer: counts)")
    again = sign(home, lab_inventory, bernd, "ot_security_officer")
    assert "replaced Bernd Maier's earlier signature" in again.stdout
    done = sign(home, lab_inventory, alice, "process_owner")
    assert done.stdout.splitlines()[-1] == ("site register: valid, signed by Bernd Maier "
                                            "(ot_security_officer) and Alice Chen "
                                            "(process_owner)")
    verify = otpatch_child(home, "register", "verify", "-i", str(lab_inventory))
    assert verify.returncode == 0, verify.stdout
    for line in ("    prod-plc-1: production, serial SIM-M580-0003, part number BMEP581020, "
                 "simulator", "    Dana Okafor: operator, process_owner, key ed25519 "
                 "lMKi34ILgRnf…", "  Alice Chen as process_owner, signed ",
                 f"pinned keys: {site_register.pinned}: owned by root, mode 0644, every folder "
                 "above it root's", "  note: otpatch runs as root, and root can edit the "
                 "pinned register keys"):
        assert line in verify.stdout
    doc = run_json(otpatch_child(home, "register", "verify", "-i", str(lab_inventory), "--json"))
    assert doc["valid"] and [s["counts"] for s in doc["signatures"]] == [True, True]
    shown = run_json(otpatch_child(home, "register", "show", "-i", str(lab_inventory)))
    assert shown["register_hash"] == doc["hash"] == json.loads(file.read_text())["register_hash"]


def test_signing_a_changed_register_drops_the_older_signatures_and_says_so(
        home, site_register, lab_inventory):
    site_register.sign(lab_inventory)
    edit(lab_inventory, *RELABEL)
    done = sign(home, lab_inventory, site_register.keys["alice-chen"], "process_owner")
    assert done.returncode == 0, done.stderr
    assert "dropped 2 signature(s) over an older register (host prod-plc-1: stage production " \
           "-> lab)" in done.stdout
    signed = json.loads(register_file(lab_inventory).read_text())["signatures"]
    assert [s["signer"] for s in signed] == ["Alice Chen"]


@pytest.mark.parametrize("case", ["key not pinned", "pinned without the role", "unknown role",
                                  "no inventory", "bad inventory", "no key file",
                                  "unreadable register", "pinned keys writable"])
def test_register_sign_refuses_bad_input_in_one_line_and_writes_nothing(
        home, site_register, lab_inventory, tmp_path, case):
    key, role = site_register.keys["bernd-maier"], "ot_security_officer"
    file, pinned = register_file(lab_inventory), site_register.pinned
    if case == "key not pinned":
        key = lab_key(tmp_path, "chen-wei").path
        says = (f"register sign: the key ed25519 JtDcbmqfF5N/… ({key}) is not pinned in "
                f"{pinned}: nothing written")
    elif case == "pinned without the role":
        role = "process_owner"
        says = (f"register sign: Bernd Maier is pinned without process_owner in {pinned} "
                "(pinned roles: ot_security_officer): nothing written")
    elif case == "unknown role":
        role = "shift_supervisor"
        says = ("register sign --role shift_supervisor: a register is signed as "
                "ot_security_officer or process_owner: nothing written")
    elif case == "no inventory":
        lab_inventory = tmp_path / "missing.yml"
        file = register_file(lab_inventory)
        says = f"{lab_inventory}:1:1: [yaml-unreadable] cannot read: No such file or directory"
    elif case == "bad inventory":
        edit(lab_inventory, "serial_number: \"SIM-M580-0001\"",
             "serail: \"SIM-M580-0001\"")
        line = next(n for n, text in enumerate(lab_inventory.read_text().splitlines(), 1)
                    if "serail" in text)
        says = (f"{lab_inventory}:{line}:15: [schema] all.children.m580_cpus.children."
                "m580_lab.hosts.lab-plc-1.serail: unknown key 'serail' (allowed: ")
    elif case == "no key file":
        key = tmp_path / "nobody.key"
        says = f"signer key {key}: cannot read it: No such file or directory"
    elif case == "unreadable register":
        file.write_text("{not json")
        says = (f"register sign: {file}: not JSON (Expecting property name enclosed in double "
                "quotes: line 1 column 2 (char 1)): nothing written (move it aside to sign "
                "afresh)")
    else:
        pinned.chmod(0o666)
        says = (f"register sign: the pinned register keys {pinned} can be changed by anyone "
                f"(mode 0666): {INSTALL}: nothing written")
    before = file.read_bytes() if file.exists() else None
    done = sign(home, lab_inventory, key, role)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr
    prefix = "" if case in ("no inventory", "bad inventory") else "otpatch: "
    assert done.stderr.startswith(prefix + says), done.stderr
    assert (file.read_bytes() if file.exists() else None) == before
