"""Advisories: CSAF 2.0 documents loaded, validated and matched against an inventory."""

MODULES: list = []
