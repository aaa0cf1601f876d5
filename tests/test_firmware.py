"""firmware.verify / firmware.stage and the hash_verified gate, on real files."""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from otpatch.engine import runs
from otpatch.engine.clock import VirtualClock
from otpatch.engine.context import RunContext
from otpatch.engine.display import PlainDisplay
from otpatch.modules.contract.errors import PlaybookError
from otpatch.engine.loader import load_playbook
from otpatch.engine.record import RunStatus
from otpatch.modules.firmware.hashing import recheck_before_transfer
from otpatch.modules.firmware.verify import Stage, Verify

from conftest import FIXTURES

PAYLOAD = b"M580 firmware image (simulator lab)\n" * 100
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
MD5 = hashlib.md5(PAYLOAD).hexdigest()


def context(tmp_path: Path, image: dict) -> RunContext:
    return RunContext(mode="dry_run", clock=VirtualClock(), run_id="r-20261126T000000-000000",
                      run_dir=tmp_path / "run", inventory=None, playbook_dir=tmp_path,
                      targets={}, facts={}, namespace={"params": {"firmware": image}})


@pytest.fixture
def image_file(tmp_path) -> Path:
    path = tmp_path / "BMEP58_SV04.30.bin"
    path.write_bytes(PAYLOAD)
    return path


CASES = [  # id, algorithm, published, ok, message fragment
    ("sha256 matches", "sha256", SHA256, True, "sha256 matches the published value"),
    ("md5 matches and sha256 is recorded", "md5", MD5, True, "MD5 is broken for collision"),
    ("sha256 differs", "sha256", "0" * 64, False, "does not match the published"),
    ("md5 differs", "md5", "f" * 32, False, "does not match the published"),
]


@pytest.mark.parametrize("algorithm,published,ok,fragment", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_verify_against_published_hash(tmp_path, image_file, algorithm, published, ok,
                                       fragment):
    image = {"path": image_file.name, "algorithm": algorithm, "hash": published}
    result = Verify().run({"param": "firmware"}, context(tmp_path, image))
    assert result.failed is not ok
    assert fragment in result.msg
    if ok:
        fact = result.facts["verified"]["firmware"]
        assert fact["sha256"] == SHA256 and fact["hash"] == published
        assert fact["size"] == len(PAYLOAD)


def test_missing_package_is_a_clear_failure(tmp_path):
    image = {"path": "nowhere.bin", "algorithm": "sha256", "hash": SHA256}
    result = Verify().run({"param": "firmware"}, context(tmp_path, image))
    assert result.failed and "cannot read firmware package" in result.msg


def test_swapped_file_after_verification_is_caught_before_transfer(tmp_path, image_file):
    image = {"path": str(image_file), "algorithm": "sha256", "hash": SHA256}
    ctx = context(tmp_path, image)
    verified = Verify().run({"param": "firmware"}, ctx)
    ctx.facts = {"verified": verified.facts["verified"]}
    assert recheck_before_transfer(image, ctx) is None
    image_file.write_bytes(PAYLOAD + b"tampered")
    assert "changed since it was verified" in recheck_before_transfer(image, ctx)


def test_stage_copies_into_the_change_store_and_rehashes(tmp_path, image_file):
    image = {"path": image_file.name, "algorithm": "sha256", "hash": SHA256}
    ctx = context(tmp_path, image)
    unverified = Stage().run({"param": "firmware"}, ctx)
    assert unverified.failed and "not verified in this run" in unverified.msg
    ctx.facts = dict(Verify().run({"param": "firmware"}, ctx).facts)
    staged = Stage().run({"param": "firmware"}, ctx)
    copy = Path(staged.facts["staged"]["firmware"]["path"])
    assert copy.parent == tmp_path / "run" / "firmware"
    assert copy.read_bytes() == PAYLOAD


def test_verified_hash_opens_the_gate(home):
    out = io.StringIO()
    progress = runs.start(str(FIXTURES / "engine" / "verified-flash.yml"), None, "dry_run", {},
                          home, PlainDisplay(out))
    assert progress.status is RunStatus.COMPLETED, progress.message
    assert "gate hash_verified: firmware: passed: firmware: sha256 9f86d0" in out.getvalue()


def test_a_different_file_keeps_the_gate_shut(home, tmp_path):
    other = tmp_path / "other.bin"
    other.write_bytes(b"not the published image")
    progress = runs.start(str(FIXTURES / "engine" / "verified-flash.yml"), None, "dry_run",
                          {"firmware": str(other)}, home, PlainDisplay(io.StringIO()))
    assert progress.status is RunStatus.ABORTED
    assert progress.state == "aborted"


@pytest.mark.parametrize("args,rule", [
    ({"param": "soak"}, "requirement-param"), ({"param": "nope"}, "unknown-param")],
    ids=["param of the wrong type", "param not declared"])
def test_firmware_args_name_a_firmware_param(tmp_path, args, rule):
    playbook = tmp_path / "p.yml"
    playbook.write_text(
        "apiVersion: otpatch/v1\nkind: Playbook\nmetadata: {name: p, version: 1.0.0}\n"
        "params:\n  soak: {type: duration, default: 4h}\ninitial: a\nstates:\n  a:\n    do:\n"
        f"      - firmware.verify: {{param: {args['param']}}}\n    next: completed\n")
    with pytest.raises(PlaybookError) as e:
        load_playbook(playbook)
    assert [p.rule for p in e.value.problems] == [rule]
    assert e.value.problems[0].line == 10  # the step
