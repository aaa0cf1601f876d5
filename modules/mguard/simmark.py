"""The mark our mGuard simulator answers with at /sim/identity (modules/mguard/sim.py serves
it, modules/mguard/driver.py checks for it before any simulator-only call). Kept apart from
the simulator so a driver talking to a real device does not load the simulator's server."""
from __future__ import annotations

SIM_ID = "otpatch-mguard-sim"
