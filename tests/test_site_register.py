"""The site register (issue 11, item 5): an inventory's approvers, stages, device identities,
journal hosts and time policy, signed by two distinct people whose keys are pinned at
install. Real files, real Ed25519 signatures with the lab keys, the CLI as a child process:
every way a register can be untrustworthy is refused for execute runs with its reason, a
dry run says so and goes on, a valid one lets the run start."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from otpatch.engine import keys
from otpatch.engine.inventory import load_inventory
from otpatch.engine.registerkeys import POSIX_PATH, pinned_keys_path
from otpatch.engine.siteregister import check_register, register_file, signature_body

from conftest import FIXTURES, ROOT, otpatch_child, run_json

GATED = str(FIXTURES / "engine" / "gated.yml")
ATTEST = str(FIXTURES / "engine" / "attest.yml")
LAB_KEYS = ROOT / "inventory" / "lab-keys"
UNSIGNED = "site register not signed: "


def status(inventory: Path, pinned: Path):
    return check_register(load_inventory(inventory), pinned)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def lab_key(tmp_path: Path, person: str):
    path = tmp_path / f"{person}.key"
    path.write_bytes((LAB_KEYS / f"{person}.key").read_bytes())
    path.chmod(0o600)
    return keys.load(path, "key")


def add_signature(inventory: Path, key, signer: str, role: str) -> None:
    """A signature written into the file by hand, as no `register sign` would write it."""
    from otpatch.engine.approvals import canonical

    file = register_file(inventory)
    doc = json.loads(file.read_text())
    at = "2026-01-01T00:00:00+00:00"
    body = signature_body(doc["register_hash"], signer, role, at)
    doc["signatures"].append({"signer": signer, "role": role, "public_key": key.public_key,
                              "signed_at": at, "signature": key.sign(canonical(body))})
    file.write_text(json.dumps(doc))


# -- what is not a signed register --------------------------------------------------------

RELABEL = ("            prod-plc-1:\n",
           "            prod-plc-1:\n              otpatch_stage: lab\n")
MALLORY = ("    maintenance_windows:", "      - name: Mallory Fake\n        roles: "
           "[ot_security_officer]\n        public_key: "
           "JtDcbmqfF5N/pxxgZZn9QMhmHUQ8qxDLrWpTUS6W4EI=\n    maintenance_windows:")
SERIAL = ("SIM-M580-0001", "SIM-M580-0009")


@pytest.mark.parametrize("change,says", [
    (RELABEL, "host prod-plc-1: stage production -> lab"),
    (MALLORY, "approver Mallory Fake added"),
    (SERIAL, "host lab-plc-1: serial SIM-M580-0001 -> SIM-M580-0009"),
], ids=["production PLC relabelled lab", "approver added", "serial changed"])
def test_a_register_changed_after_signing_is_refused_naming_the_change(
        home, site_register, lab_inventory, change, says):
    site_register.sign(lab_inventory)
    edit(lab_inventory, *change)
    why = f"{UNSIGNED}{register_file(lab_inventory)} was signed for another register: {says}"
    assert status(lab_inventory, site_register.pinned).reason == why
    done = otpatch_child(home, "run", GATED, "-i", str(lab_inventory), "--execute",
                         "--operator", "Chen Wei")
    assert (done.returncode, done.stderr, done.stdout) == (2, f"otpatch: {why}\n", "")
    assert not (home / "journal.sqlite").exists()  # refused before anything is journaled
    verify = otpatch_child(home, "register", "verify", "-i", str(lab_inventory))
    assert verify.returncode == 3 and verify.stdout.endswith(f"verdict: {why}\n")


def test_no_signed_register_refuses_an_execute_run(home, site_register, lab_inventory):
    why = (f"{UNSIGNED}no signed register beside {lab_inventory}: "
           f"{register_file(lab_inventory)} does not exist "
           f"(otpatch register sign -i {lab_inventory} --key KEYFILE --role ROLE)")
    done = otpatch_child(home, "run", GATED, "-i", str(lab_inventory), "--execute")
    assert (done.returncode, done.stderr) == (2, f"otpatch: {why}\n")
    assert not (home / "journal.sqlite").exists()


def one_signature(site, lab_inventory, tmp_path):
    site.sign(lab_inventory)
    file = register_file(lab_inventory)
    doc = json.loads(file.read_text())
    file.write_text(json.dumps({**doc, "signatures": doc["signatures"][:1]}))
    return "has no signature as process_owner that counts (Bernd Maier as " \
           "ot_security_officer: counts)"


def one_person_both_roles(site, lab_inventory, tmp_path):
    edit(site.pinned, "roles: [ot_security_officer]", "roles: [ot_security_officer, "
         "process_owner]")
    site.sign(lab_inventory)
    add_signature(lab_inventory, lab_key(tmp_path, "bernd-maier"), "Bernd Maier", "process_owner")
    file = register_file(lab_inventory)
    doc = json.loads(file.read_text())
    file.write_text(json.dumps({**doc, "signatures": [doc["signatures"][0],
                                                       doc["signatures"][2]]}))
    return ": Bernd Maier signed as both ot_security_officer and process_owner: two " \
           "distinct people must sign"


def key_not_pinned(site, lab_inventory, tmp_path):
    one_signature(site, lab_inventory, tmp_path)
    add_signature(lab_inventory, lab_key(tmp_path, "chen-wei"), "Chen Wei", "process_owner")
    return ("has no signature as process_owner that counts (Bernd Maier as ot_security_officer:"
            " counts; Chen Wei as process_owner: the key ed25519 JtDcbmqfF5N/… is not pinned "
            f"in {site.pinned})")


def pinned_without_the_role(site, lab_inventory, tmp_path):
    site.pinned.write_text(site.pinned.read_text() + "  - {name: Chen Wei, roles: [operator],"
                           " public_key: JtDcbmqfF5N/pxxgZZn9QMhmHUQ8qxDLrWpTUS6W4EI=}\n")
    one_signature(site, lab_inventory, tmp_path)
    add_signature(lab_inventory, lab_key(tmp_path, "chen-wei"), "Chen Wei", "process_owner")
    return ("has no signature as process_owner that counts (Bernd Maier as ot_security_officer:"
            " counts; Chen Wei as process_owner: Chen Wei is pinned without process_owner "
            "(pinned roles: operator))")


def forged_signature(site, lab_inventory, tmp_path):
    site.sign(lab_inventory)
    file = register_file(lab_inventory)
    doc = json.loads(file.read_text())
    doc["signatures"][1]["signature"] = doc["signatures"][0]["signature"]  # Bernd's, for Alice
    file.write_text(json.dumps(doc))
    return ("has no signature as process_owner that counts (Bernd Maier as ot_security_officer:"
            " counts; Alice Chen as process_owner: the signature does not verify (altered or "
            "forged?))")


def corrupt_file(site, lab_inventory, tmp_path):
    register_file(lab_inventory).write_text('{"kind": "otpatch/site-register", ')
    return ": not JSON (Expecting property name enclosed in double quotes: line 1 column 35 " \
           "(char 34))"


@pytest.mark.parametrize("arrange", [one_signature, one_person_both_roles, key_not_pinned,
                                     pinned_without_the_role, forged_signature, corrupt_file])
def test_signatures_that_do_not_make_a_register_valid(site_register, lab_inventory, tmp_path,
                                                      arrange):
    says = arrange(site_register, lab_inventory, tmp_path)
    sep = "" if says.startswith(":") else " "
    got = status(lab_inventory, site_register.pinned)
    assert not got.valid and got.reason == f"{UNSIGNED}{register_file(lab_inventory)}{sep}{says}"


# -- the pinned keys ----------------------------------------------------------------------

INSTALL = "install them owned by root, mode 0644"


def test_missing_pinned_keys_refuse_even_a_well_signed_register(site_register, lab_inventory,
                                                                tmp_path):
    site_register.sign(lab_inventory)
    missing = tmp_path / "nowhere" / "register-keys.yml"
    assert status(lab_inventory, missing).reason == (
        f"{UNSIGNED}the pinned register keys {missing} cannot be read: No such file or "
        "directory")


@pytest.mark.parametrize("mode,who", [(0o664, "group gid 0"), (0o646, "anyone")])
def test_pinned_keys_writable_by_group_or_others_are_refused(site_register, lab_inventory,
                                                             mode, who):
    site_register.sign(lab_inventory)
    site_register.pinned.chmod(mode)
    assert status(lab_inventory, site_register.pinned).reason == (
        f"{UNSIGNED}the pinned register keys {site_register.pinned} can be changed by {who} "
        f"(mode {mode:04o}): {INSTALL}")


def test_pinned_keys_owned_by_another_user_are_refused(site_register, lab_inventory):
    site_register.sign(lab_inventory)
    os.chown(site_register.pinned, 1000, -1)
    assert status(lab_inventory, site_register.pinned).reason == (
        f"{UNSIGNED}the pinned register keys {site_register.pinned} can be changed by uid 1000 "
        f"(owner uid 1000): {INSTALL}")


@pytest.mark.parametrize("folder_mode,owner,says", [
    (0o777, 0, "can be changed by anyone (folder {f} writable by others)"),
    (0o755, 1000, "can be changed by uid 1000 (folder {f} owned by uid 1000)"),
    (0o1777, 0, None),  # sticky, like /tmp: others cannot replace root's file
], ids=["folder writable by others", "folder of another user", "sticky folder"])
def test_every_folder_above_the_pinned_keys_is_checked(site_register, lab_inventory, tmp_path,
                                                       folder_mode, owner, says):
    site_register.sign(lab_inventory)
    folder = tmp_path / "etc"
    folder.mkdir()
    pinned = folder / "register-keys.yml"
    pinned.write_bytes(site_register.pinned.read_bytes())
    os.chown(folder, owner, -1)
    folder.chmod(folder_mode)
    got = status(lab_inventory, pinned)
    if says is None:
        assert got.valid, got.reason
    else:
        assert got.reason == (f"{UNSIGNED}the pinned register keys {pinned} "
                              f"{says.format(f=folder)}: {INSTALL}")


def test_pinned_keys_that_are_not_valid_are_refused_with_file_line_col(site_register,
                                                                       lab_inventory):
    site_register.sign(lab_inventory)
    edit(site_register.pinned, "public_key: aqyRLV0Z", "public_key: not-a-key-aqyRLV0Z")
    assert status(lab_inventory, site_register.pinned).reason.startswith(
        f"{UNSIGNED}{site_register.pinned}:12:5: [schema] signers[0].public_key: the signer's "
        "Ed25519 public key as `otpatch keygen --name` prints it")


def test_the_pinned_keys_path_is_the_environment_s_or_the_platform_s():
    assert pinned_keys_path({"OTPATCH_REGISTER_KEYS": "/srv/keys.yml"}) == Path("/srv/keys.yml")
    assert pinned_keys_path({}) == POSIX_PATH == Path("/etc/otpatch/register-keys.yml")


# -- a valid register, and dry runs -------------------------------------------------------

def started(home: Path) -> dict:
    from otpatch.engine.journal import Journal

    with Journal.open(home, read_only=True) as journal:
        (first,) = [e for e in journal.entries() if e.event_type == "run_started"][-1:]
    return first.payload


def test_a_valid_register_lets_an_execute_run_start_and_records_what_it_ran_under(
        home, site_register, lab_inventory):
    site_register.sign(lab_inventory)
    got = status(lab_inventory, site_register.pinned)
    assert got.valid and got.signers == ("Bernd Maier", "Alice Chen") and got.reason == ""
    done = otpatch_child(home, "run", GATED, "-i", str(lab_inventory), "--execute", "--json",
                         "--operator", "Chen Wei")
    assert done.returncode == 3 and run_json(done)["state"] == "prepare"  # at the sign-off
    recorded = started(home)["register"]
    assert {(a["name"], tuple(a["roles"])) for a in recorded.pop("approvers")} >= {
        ("Alice Chen", ("process_owner",)), ("Bernd Maier", ("ot_security_officer",))}
    assert recorded == {
        "hash": got.hash, "signed": True, "signers": ["Bernd Maier", "Alice Chen"],
        "pinned_keys": str(site_register.pinned), "reason": None,
        "note": f"otpatch runs as root, and root can edit the pinned register keys "
                f"{site_register.pinned}"}


def test_the_register_ignores_layout_comments_and_order(site_register, lab_inventory):
    site_register.sign(lab_inventory)
    edit(lab_inventory, "all:\n", "# reviewed 2026-01\nall:   # the site\n")
    edit(lab_inventory, "        roles: [process_owner, operator]", "        roles:\n"
         "          - operator\n          - process_owner")
    assert status(lab_inventory, site_register.pinned).valid


def test_a_dry_run_may_use_an_unsigned_register_and_says_so(home, site_register, lab_inventory):
    why = (f"no signed register beside {lab_inventory}: {register_file(lab_inventory)} "
           "does not exist "
           f"(otpatch register sign -i {lab_inventory} --key KEYFILE --role ROLE)")
    done = otpatch_child(home, "run", GATED, "-i", str(lab_inventory), "--dry-run")
    assert done.returncode == 3, done.stderr  # past the simulated sign-off, as before
    assert f"] site register: not signed (a dry run may use it): {why}\n" in done.stdout
    record = started(home)["register"]
    assert (record["signed"], record["reason"]) == (False, UNSIGNED + why)
    assert record["hash"] == status(lab_inventory, site_register.pinned).hash


def test_a_run_without_an_inventory_trusts_nobody_and_is_not_refused(home, site_register):
    done = otpatch_child(home, "run", GATED, "--execute")
    assert done.returncode == 3 and "the run's operator is not named" in done.stdout
    assert started(home)["register"]["note"].startswith("no inventory: the run trusts no ")


# -- approve, approvals add, attest and resume trust the register too ----------------------

def break_register(lab_inventory: Path) -> str:
    """Alice's signature removed from the signed file after the run started."""
    file = register_file(lab_inventory)
    doc = json.loads(file.read_text())
    file.write_text(json.dumps({**doc, "signatures": doc["signatures"][:1]}))
    return (f"otpatch: {UNSIGNED}{file} has no signature as process_owner that counts "
            "(Bernd Maier as ot_security_officer: counts)\n")


def test_approve_approvals_add_and_resume_refuse_an_unsigned_register(home, site_register,
                                                                      lab_inventory, tmp_path):
    site_register.sign(lab_inventory)
    done = otpatch_child(home, "run", GATED, "-i", str(lab_inventory), "--execute", "--json",
                         "--operator", "Chen Wei")
    run_id = run_json(done)["run_id"]
    request, signed = tmp_path / "request.json", tmp_path / "signed.json"
    assert otpatch_child(home, "approve", run_id, "--request-out", str(request)).returncode == 0
    key = site_register.keys["alice-chen"]
    assert otpatch_child(home, "approve", "--request", str(request), "--role", "process_owner",
                         "--key", str(key), "--reason", "ok", "-o", str(signed)).returncode == 0
    says = break_register(lab_inventory)
    for args in (["approve", run_id, "--role", "process_owner", "--key", str(key), "--reason",
                  "lab evidence reviewed"], ["approvals", "add", str(signed)],
                 ["resume", run_id]):
        refused = otpatch_child(home, *args)
        assert (refused.returncode, refused.stderr) == (2, says), args
    listed = otpatch_child(home, "approvals", run_id, "--json")
    assert run_json(listed)["approvals"] == []  # nothing recorded


def test_attest_refuses_an_unsigned_register(home, site_register, lab_inventory):
    site_register.sign(lab_inventory)
    done = otpatch_child(home, "run", ATTEST, "-i", str(lab_inventory), "--execute", "--json")
    assert done.returncode == 3
    run_id = run_json(done)["run_id"]
    says = break_register(lab_inventory)
    refused = otpatch_child(home, "attest", run_id, "--role", "operator", "--key",
                            str(site_register.keys["alice-chen"]))
    assert (refused.returncode, refused.stderr) == (2, says)

