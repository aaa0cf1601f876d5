"""Core modules: wait, assert, set_fact, attest."""

MODULES = {
    "core.wait": "otpatch.modules.core.wait:Wait",
    "core.assert": "otpatch.modules.core.assert_:Assert",
    "core.set_fact": "otpatch.modules.core.set_fact:SetFact",
    "core.attest": "otpatch.modules.core.attest:Attest",
}
