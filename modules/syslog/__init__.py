"""Syslog continuity: the firewall's messages reach the SIEM before and after a change."""

# name -> where its class is; imported when a playbook first uses it (drivers pull in
# pymodbus, pycomm3, requests and cryptography: `otpatch validate` stays fast)
MODULES = {
    "syslog.continuity": "otpatch.modules.syslog.continuity:Continuity",
}

# send(host, port, app, msgid, params, text): the journal's checkpoints to the SIEM
SENDERS = {"siem": "otpatch.modules.syslog.sender:send_event"}
