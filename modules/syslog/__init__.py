"""Syslog continuity: the firewall's messages reach the SIEM before and after a change."""

from otpatch.modules.syslog.continuity import Continuity

MODULES: list = [Continuity]
