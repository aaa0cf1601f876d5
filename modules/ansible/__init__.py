"""The ansible.playbook module: an Ansible playbook as one step, through ansible-runner."""
