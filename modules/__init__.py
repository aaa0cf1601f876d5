"""otpatch modules: everything a playbook state can call, one sub-package per domain.

Below them all, the contract (otpatch.modules.contract): errors with exit codes, the module
base class and Result, durations, canonical JSON, file and YAML reading. A package imports
the contract and its own files, never otpatch.engine; it declares what it brings in its
`__init__` (modules/registry.py says how), and the engine finds it through PACKAGES."""

# The built-in packages, in the order the registry loads them (site plugins come after).
PACKAGES = (
    "otpatch.modules.core",
    "otpatch.modules.ansible",
    "otpatch.modules.firmware",
    "otpatch.modules.m580",
    "otpatch.modules.cip",
    "otpatch.modules.mguard",
    "otpatch.modules.syslog",
    "otpatch.modules.risk",
    "otpatch.modules.firewall",
    "otpatch.modules.advisories",
    "otpatch.modules.services",
)
