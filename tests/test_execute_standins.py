"""Execute mode against the simulators, standing in for real devices: the same playbook, the
same modules, only the clock (wall, simulators at time_scale) and the gate policy differ.
A person answers the attestations at a real pseudo-terminal (pexpect)."""
from __future__ import annotations

import sys

import pexpect
import pytest

from otpatch.engine.journal import Journal
from otpatch.engine.record import fold
from otpatch.engine.simlab import start_lab

from conftest import ROOT, child_env

M580 = str(ROOT / "playbooks" / "m580-firmware-update.yml")
TIME_SCALE = 0.002  # wall seconds per simulated second: the 8-minute transfer takes 0.96 s


@pytest.mark.slow
def test_execute_runs_the_lab_for_real_and_stops_at_the_production_gate(tmp_path,
                                                                       site_register):
    home = tmp_path / "home"
    with start_lab(ROOT / "inventory" / "lab.yml", ephemeral=True, time_scale=TIME_SCALE,
                   out_dir=tmp_path / "lab") as lab:
        site_register.sign(lab.inventory)  # an execute run needs the site register signed
        child = pexpect.spawn(sys.executable, ["-m", "otpatch.engine.cli", "run", M580, "-i",
                                               str(lab.inventory), "--execute", "-e", "soak=0s",
                                               "-e", "io_observe=1s"],
                              cwd=str(ROOT), env=child_env(home), encoding="utf-8",
                              timeout=60, dimensions=(40, 200))
        child.expect(r"attestation \(ot_security_officer\): Lab test results")
        child.expect(r"who holds ot_security_officer in .*:\r\n    1\. Bernd Maier\r\n")
        child.expect("your number or your name: ")
        child.sendline("Bernd Maier")
        child.expect(r"Bernd Maier \(ot_security_officer\): do you confirm it\? \[yes/no\] ")
        child.sendline("yes")
        child.expect(pexpect.EOF)
        child.close()
    assert child.exitstatus == 3, child.before  # refused by a gate
    with Journal.open(home, create=False) as journal:
        (run,) = journal.runs()
        progress = fold(run.run_id, journal.entries(run.run_id))
        assert journal.verify().ok
    assert progress.config.mode == "execute" and progress.state == "staging_verify"
    assert "the run's operator is not named" in progress.message  # sign-offs need one
    assert progress.facts["lab_plc"]["revision"] == "v04.30"  # really transferred
    assert progress.facts["staging_plc"]["running_version"] == "v04.30"
    attestation = progress.facts["attestation"]
    assert (attestation["person"], attestation["role"], attestation["simulated"]) == (
        "Bernd Maier", "ot_security_officer", False)
    assert attestation["host"] and attestation["terminal"].startswith("/dev/")
    lab_transfer = next(v for v in progress.path if v.state == "lab_transfer")
    assert lab_transfer.left_at - lab_transfer.entered_at < 60  # wall clock, scaled sims
