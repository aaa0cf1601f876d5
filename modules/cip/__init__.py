"""CIP over EtherNet/IP: connection checks to remote I/O adapters."""

from otpatch.modules.cip.connections import Connections

MODULES: list = [Connections]
