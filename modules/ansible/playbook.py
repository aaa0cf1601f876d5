"""ansible.playbook: run an Ansible playbook through ansible-runner as one step."""
from __future__ import annotations

from otpatch.modules.base import Module, Result


class AnsiblePlaybook(Module):
    name = "ansible.playbook"
    doc = "not implemented yet: runs an Ansible playbook through ansible-runner"
    args_schema = {"type": "object", "properties": {"playbook": {"type": "string"}},
                   "required": ["playbook"], "additionalProperties": False}
    changes_device = True

    def run(self, args, ctx) -> Result:
        return Result(failed=True, msg="not implemented: ansible.playbook")
