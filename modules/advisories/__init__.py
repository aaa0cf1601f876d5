"""Advisories: CSAF 2.0 documents loaded, validated and matched against an inventory."""

from otpatch.modules.advisories.step import AdvisoriesMatch

MODULES: list = [AdvisoriesMatch]
