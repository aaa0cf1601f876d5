"""Syslog continuity: the firewall's messages reach the SIEM before and after a change."""

MODULES: list = []
