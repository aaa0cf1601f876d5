"""The simulator's Modbus register map: addresses and codes, imported by driver and simulator.

The table a person reads is in sim.py's docstring; this is the same map as data. Real M580
CPUs expose RUN/STOP and firmware state only through the proprietary UMAS protocol, so the map
is the simulator's own, documented contract (see ../shared/design/domain-notes.md)."""
from __future__ import annotations

from enum import IntEnum

# Holding registers (FC 3 read; FC 6/16 write where WRITABLE says so).
CPU_STATE = 100
RUN_LED = 101
OPERATING_MODE = 102
PID_LOOPS = 103
PID_LOOPS_STABLE = 104
IO_DROPS = 105
IO_DROPS_HEALTHY = 106
RUNNING_VERSION = 110  # 110 major, 111 minor
STAGED_VERSION = 112  # 112 major, 113 minor; 0.0: nothing staged
PREVIOUS_VERSION = 114  # 114 major, 115 minor; 0.0: nothing to restore
TRANSFER_STATE = 116
TRANSFER_PROGRESS = 117  # percent
RESTORE_STATE = 118

STATUS_FIRST = CPU_STATE
STATUS_COUNT = RESTORE_STATE - CPU_STATE + 1  # one read covers the whole status block
WRITABLE = frozenset({OPERATING_MODE})


class CpuState(IntEnum):
    STOP = 0
    RUN = 1
    REBOOTING = 2
    HALTED = 3  # recovery state: the CPU did not come back after a firmware change
    UPDATING = 4  # firmware being written or restored
    NOCONF = 5  # no valid application (Control Expert's state name): after a special downgrade


class RunLed(IntEnum):
    OFF = 0
    SOLID_GREEN = 1
    BLINKING_GREEN = 2


class OperatingMode(IntEnum):
    AUTO = 0
    MANUAL = 1


class TransferState(IntEnum):
    IDLE = 0
    IN_PROGRESS = 1
    COMPLETE = 2
    ABORTED = 3


class RestoreState(IntEnum):
    IDLE = 0
    IN_PROGRESS = 1
    COMPLETE = 2
    FAILED = 3


def label(code: IntEnum) -> str:
    """The lower-case name a fact or a message uses: `solid_green`, `manual`, `RUN` for states."""
    return code.name if isinstance(code, CpuState) else code.name.lower()


def spoken(code: IntEnum) -> str:
    """The label as a message says it: `solid green`, `blinking green`."""
    return label(code).replace("_", " ")
