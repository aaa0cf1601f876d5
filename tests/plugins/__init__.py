"""Test-only module plugins, loaded through OTPATCH_MODULE_PLUGINS."""
