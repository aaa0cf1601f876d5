"""Risk: CVSS v3.x scores, compensating controls, due dates and the risk register."""

from otpatch.modules.risk.assess import Assess

MODULES: list = [Assess]
