# -*- coding: utf-8 -*-
# Copyright: otpatch maintainers
# Apache License 2.0 (see the otpatch repository)
"""The CLI-path helpers of module_utils/otpatch_site.py on their own: the site-rollout
command line for each option, params as text, refusals in one line."""
from __future__ import annotations

import pytest

from ansible_collections.otpatch.fleet.plugins.module_utils.otpatch_site import (
    _params, _refused, _rollout_argv)


def rollout_params(**options):
    """site_rollout's params as AnsibleModule gives them: every option, defaults filled."""
    params = dict(playbook='pb.yml', playbook_sha256=None, inventory='site.yml', home='home',
                  host_key=None, params={}, mode='dry_run', fleet_mode='observe', stage=None,
                  operator=None, evidence=None, resume=False, run_id=None, resume_paused=False,
                  cli='otpatch')
    params.update(options)
    return params


def test_defaults_ask_for_an_observed_dry_run():
    """Nothing but the files: observe mode, no --execute, no --check."""
    assert _rollout_argv(rollout_params(), check_mode=False) == [
        'fleet', 'site-rollout', 'pb.yml', '-i', 'site.yml', '--json', '--fleet-mode', 'observe']


def test_check_mode_adds_check_after_execute():
    """Check mode plans even an execute run: --execute and --check both go to the site,
    which plans only."""
    argv = _rollout_argv(rollout_params(mode='execute'), check_mode=True)
    assert argv[-2:] == ['--execute', '--check']


@pytest.mark.parametrize('option, value, expected', [
    ('playbook_sha256', 'ab' * 32, ['--playbook-sha256', 'ab' * 32]),
    ('stage', 'staging', ['--stage', 'staging']),
    ('operator', 'Bernd Maier', ['--operator', 'Bernd Maier']),
    ('evidence', ['rec-1'], ['--evidence', 'rec-1']),
])
def test_each_option_has_its_flag(option, value, expected):
    """One option set: its flag and value, right after the fixed part."""
    argv = _rollout_argv(rollout_params(**{option: value}), check_mode=False)
    assert argv[8:] == expected


def test_resume_names_the_run():
    """resume carries run_id as --resume's value."""
    argv = _rollout_argv(rollout_params(resume=True, run_id='run-7'), check_mode=False)
    assert argv[-2:] == ['--resume', 'run-7']


def test_resume_paused_asks_the_site_to_find_the_run():
    """resume_paused goes as --resume-paused; with resume and a run id, that run wins."""
    assert _rollout_argv(rollout_params(resume_paused=True), check_mode=False)[-1] == \
        '--resume-paused'
    argv = _rollout_argv(rollout_params(resume=True, run_id='run-7', resume_paused=True),
                         check_mode=False)
    assert argv[-2:] == ['--resume', 'run-7'] and '--resume-paused' not in argv


def test_a_run_id_without_resume_is_not_sent():
    """run_id alone does not resume anything."""
    assert '--resume' not in _rollout_argv(rollout_params(run_id='run-7'), check_mode=False)


def test_params_are_text_as_minus_e_gives_them():
    """Text stays text; numbers, booleans, lists and dicts go as JSON."""
    assert _params({'a': 'x', 'b': 2, 'c': True, 'd': [1], 'e': {'k': None}}) == {
        'a': 'x', 'b': '2', 'c': 'true', 'd': '[1]', 'e': '{"k": null}'}
    assert _params(None) == {}


def test_a_refusal_is_its_first_line():
    """A multi-line otpatch error becomes a one-line, failed, unchanged refusal."""
    assert _refused(ValueError('playbook does not load\n  line 3: bad state')) == {
        'changed': False, 'failed': True, 'state': 'refused', 'msg': 'playbook does not load'}


def test_an_empty_refusal_is_named_by_its_kind():
    """An error without a message still says what it was."""
    assert _refused(KeyError())['msg'] == 'KeyError'
