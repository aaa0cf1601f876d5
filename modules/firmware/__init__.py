"""Firmware packages: hash verification against the published value, staging."""

MODULES: list = []
