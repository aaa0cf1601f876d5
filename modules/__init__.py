"""otpatch modules: everything a playbook state can call, one sub-package per domain."""
