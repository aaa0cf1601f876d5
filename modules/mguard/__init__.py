"""Phoenix Contact FL mGuard: HTTPS driver, simulator and modules."""

MODULES: list = []
