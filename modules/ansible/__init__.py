"""The ansible.playbook module: an Ansible playbook as one step, through ansible-runner."""

MODULES = {"ansible.playbook": "otpatch.modules.ansible.playbook:AnsiblePlaybook"}
