#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: otpatch maintainers
# Apache License 2.0 (see the otpatch repository)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: site_rollout
short_description: Run an otpatch procedure at one site, through that site's own otpatch
version_added: 0.1.0
description:
  - Runs an otpatch playbook (a patching procedure) at the site this host is, through the
    site's own otpatch, its journal, its sign-offs and its maintenance windows. Nothing here
    reaches a device; otpatch does, at the site, in the site's zone.
  - Refuses (C(state=refused)) a playbook whose SHA-256 is not the one the fleet pinned.
  - A site in I(fleet_mode=observe) never starts a run (C(state=observed)); it returns
    the site's status instead, as M(otpatch.fleet.site_status) reads it.
  - A window that is closed, or too short for the path's worst case, defers the site
    (C(changed=false), C(state=deferred), not failed, so it does not count against
    C(max_fail_percentage)).
  - A run that waits for a sign-off fails with C(state=awaiting_signoff) and the roles
    missing, so the rollout stops for the humans; sign with C(otpatch approve) at the site,
    then run again with I(resume=true), or with I(resume_paused=true), which finds the run.
  - In check mode the site plans only (otpatch C(plan)); no device, simulator included, is
    touched and nothing is journaled.
options:
  playbook:
    description: The otpatch playbook, as the site holds it.
    type: path
    required: true
  playbook_sha256:
    description: The playbook's content hash the fleet pinned; the run is refused when the
      site's copy differs. Omit it to skip the check.
    type: str
  params:
    description: The procedure's params (C(-e NAME=VALUE)); values are passed as text.
    type: dict
    default: {}
  mode:
    description: C(dry_run) against the site's simulators, or C(execute).
    type: str
    choices: [dry_run, execute]
    default: dry_run
  fleet_mode:
    description: C(observe) reports only and never starts a run; C(execute) runs.
    type: str
    choices: [observe, execute]
    default: observe
  stage:
    description: Run only the states of this stage.
    type: str
    choices: [lab, staging, production]
  operator:
    description: Who operates the run (recorded in every journal entry).
    type: str
  evidence:
    description: Record hashes of the runs its sign-offs approve.
    type: list
    elements: str
  resume:
    description: Continue the paused run I(run_id) instead of starting one.
    type: bool
    default: false
  run_id:
    description: The site run to continue (with I(resume=true)).
    type: str
  resume_paused:
    description:
      - In C(execute) mode, continue the newest execute run of this playbook (the same
        content hash) that the site holds unended (waiting at a gate or for a person, or
        interrupted) instead of starting another beside it; start one when there is none.
      - Ignored with I(resume=true) and for dry runs, which are never continued.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Plans only; returns C(changed=false).
extends_documentation_fragment:
  - otpatch.fleet.site
author:
  - otpatch maintainers (@otpatch)
'''

EXAMPLES = r'''
- name: Run the pinned procedure at the site, or continue its paused run there
  otpatch.fleet.site_rollout:
    playbook: /srv/otpatch/playbooks/m580-firmware-update.yml
    playbook_sha256: "{{ otpatch_playbook_sha256 }}"
    inventory: "{{ otpatch_site }}"
    home: "{{ otpatch_home }}"
    mode: execute
    fleet_mode: "{{ otpatch_fleet_mode | default('observe') }}"
    operator: Chen Wei
    resume_paused: true
  register: rollout

- name: Continue after the sign-offs were recorded at the site
  otpatch.fleet.site_rollout:
    playbook: /srv/otpatch/playbooks/m580-firmware-update.yml
    inventory: "{{ otpatch_site }}"
    home: "{{ otpatch_home }}"
    fleet_mode: execute
    resume: true
    run_id: "{{ rollout.run_id }}"
'''

RETURN = r'''
state:
  description: completed, planned (check mode), observed, deferred, awaiting_signoff,
    awaiting (another gate or a person), rolled_back, aborted, halted, or refused.
  returned: always
  type: str
  sample: completed
run_id:
  description: The site's run id.
  returned: when a run started or resumed
  type: str
status:
  description: otpatch's run status (completed, awaiting, rolled_back, aborted, halted).
  returned: when a run started or resumed
  type: str
devices:
  description: Each targeted device's outcome (changed and verified, restored and
    verified, left changed, not changed, unknown) with a statement.
  returned: when a run started or resumed
  type: list
  elements: dict
journal_head:
  description: The site journal's newest entry when the run stopped (seq and hash); for an
    observing site, the journal's head as it stands (null with no journal).
  returned: when a run started or resumed, or the site observed
  type: dict
record:
  description: The ended run's record hash (what --evidence names), or null.
  returned: when a run started or resumed
  type: str
resumed:
  description: The run was continued (I(resume) or I(resume_paused)), not started.
  returned: when a run resumed, or would in check mode
  type: bool
firmware:
  description: Per host of the site, the firmware as last read once the run completed
    (firmware, source, run_id, simulator, provenance), or null; as site_status returns it.
  returned: when state is completed or observed
  type: dict
journal:
  description: The runs' journal's head, verification and problems, as site_status
    returns it.
  returned: when state is observed
  type: dict
site_record:
  description: The site record's verification, as site_status returns it.
  returned: when state is observed
  type: dict
pending_signoffs:
  description: The execute runs waiting at a sign-off gate, as site_status returns them.
  returned: when state is observed
  type: list
  elements: dict
resumable:
  description: The execute runs that have not ended, as site_status returns them.
  returned: when state is observed
  type: list
  elements: dict
windows:
  description: Each maintenance window, open or closed now, as site_status returns them.
  returned: when state is observed
  type: dict
gate:
  description: The sign-off gate the run waits at.
  returned: when state is awaiting_signoff
  type: str
missing_roles:
  description: The roles whose sign-off the gate still needs.
  returned: when state is awaiting_signoff
  type: list
  elements: str
path:
  description: The planned path of states.
  returned: in check mode
  type: list
  elements: str
msg:
  description: What happened, in one line.
  returned: always
  type: str
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.otpatch.fleet.plugins.module_utils.otpatch_site import (
    SITE_ARGUMENTS, finish, rollout)

ARGUMENT_SPEC = dict(
    SITE_ARGUMENTS,
    playbook=dict(type='path', required=True),
    playbook_sha256=dict(type='str'),
    params=dict(type='dict', default={}),
    mode=dict(type='str', choices=['dry_run', 'execute'], default='dry_run'),
    fleet_mode=dict(type='str', choices=['observe', 'execute'], default='observe'),
    stage=dict(type='str', choices=['lab', 'staging', 'production']),
    operator=dict(type='str'),
    evidence=dict(type='list', elements='str'),
    resume=dict(type='bool', default=False),
    run_id=dict(type='str'),
    resume_paused=dict(type='bool', default=False),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True,
                           required_if=[('resume', True, ('run_id',))])
    finish(module, rollout(module))


if __name__ == '__main__':
    main()
