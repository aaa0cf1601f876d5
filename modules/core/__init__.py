"""Core modules: wait, assert, set_fact, attest."""
