"""Risk: CVSS v3.x scores, compensating controls, due dates and the risk register."""

MODULES: list = []
