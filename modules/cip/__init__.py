"""CIP over EtherNet/IP: connection checks to remote I/O adapters."""

# name -> where its class is; imported when a playbook first uses it (drivers pull in
# pymodbus, pycomm3, requests and cryptography: `otpatch validate` stays fast)
MODULES = {
    "cip.connections": "otpatch.modules.cip.connections:Connections",
}
