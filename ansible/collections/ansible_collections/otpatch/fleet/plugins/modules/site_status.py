#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: otpatch maintainers
# Apache License 2.0 (see the otpatch repository)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: site_status
short_description: Read one site's otpatch status, changing nothing
version_added: 0.1.0
description:
  - Reads, at the site, from the site's own otpatch, its journal's head and whether the
    journal verifies, the site record's verification, the sign-offs execute runs wait
    for, each maintenance window open or closed now, the firmware each host last read
    (with where the value came from), and the SHA-256 of a playbook.
  - Read-only; always C(changed=false).
options:
  playbook:
    description: A playbook whose content hash to return as I(playbook_sha256).
    type: path
attributes:
  check_mode:
    support: full
    description: Reads only, in check mode too.
extends_documentation_fragment:
  - otpatch.fleet.site
author:
  - otpatch maintainers (@otpatch)
'''

EXAMPLES = r'''
- name: Site status before the run
  otpatch.fleet.site_status:
    inventory: "{{ otpatch_site }}"
    home: "{{ otpatch_home }}"
    playbook: /srv/otpatch/playbooks/m580-firmware-update.yml
  register: before

- name: The site holds the pinned procedure
  ansible.builtin.assert:
    that: before.playbook_sha256 == otpatch_playbook_sha256
'''

RETURN = r'''
journal:
  description: The runs' journal, C(head) (seq and hash, null with no journal),
    C(verified) (null with no journal) and C(problems).
  returned: always
  type: dict
site_record:
  description: The site record's verification (verified, entries, problems), or null.
  returned: always
  type: dict
pending_signoffs:
  description: Each execute run waiting at a sign-off gate (run_id, playbook, gate,
    missing_roles).
  returned: always
  type: list
  elements: dict
resumable:
  description: Each execute run that has not ended (awaiting, or interrupted), newest last
    (run_id, status, state, playbook, playbook_sha256); a rollout resumes the one of the
    procedure it pinned.
  returned: always
  type: list
  elements: dict
windows:
  description: Each maintenance window (start, end, open now).
  returned: always
  type: dict
firmware:
  description: Per host, the firmware as last read (firmware, source, run_id, simulator,
    provenance), or null.
  returned: always
  type: dict
playbook_sha256:
  description: The content hash of I(playbook).
  returned: when playbook is given
  type: str
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.otpatch.fleet.plugins.module_utils.otpatch_site import (
    SITE_ARGUMENTS, finish, status)

ARGUMENT_SPEC = dict(SITE_ARGUMENTS, playbook=dict(type='path'))


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    finish(module, status(module))


if __name__ == '__main__':
    main()
