"""CIP over EtherNet/IP: connection checks to remote I/O adapters."""

MODULES: list = []
