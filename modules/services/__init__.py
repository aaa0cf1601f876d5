"""Which management services answer on a device: one TCP connect per usual port, only where
the site's policy allows active checks (fragile OT devices have crashed under scans)."""

MODULES = {
    "services.check": "otpatch.modules.services.check:ServicesCheck",
}
