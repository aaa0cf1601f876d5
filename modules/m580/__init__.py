"""Schneider Modicon M580 (and X80 EIO adapters): driver, simulator and modules."""

MODULES: list = []  # the package's Module classes, merged into the registry
