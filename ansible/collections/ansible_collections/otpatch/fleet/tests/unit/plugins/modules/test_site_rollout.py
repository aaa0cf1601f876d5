# -*- coding: utf-8 -*-
# Copyright: otpatch maintainers
# Apache License 2.0 (see the otpatch repository)
"""otpatch.fleet.site_rollout as a task: its options checked by AnsibleModule, then carried
to the site's otpatch CLI (a stand-in executable, see tests/unit/conftest.py), and what
the CLI prints turned into the task's result."""
from __future__ import annotations

import json

from ansible_collections.otpatch.fleet.plugins.module_utils import otpatch_site
from ansible_collections.otpatch.fleet.plugins.modules import site_rollout


def rollout_task(site, cli, **options):
    """site_rollout's arguments for the site, through the stand-in cli."""
    return dict(site, cli=cli.path, **options)


def base_argv(site, fleet_mode='observe'):
    """The arguments every site-rollout call starts with."""
    return ['fleet', 'site-rollout', site['playbook'], '-i', site['inventory'], '--json',
            '--fleet-mode', fleet_mode]


def test_check_mode_only_plans_at_the_site(run_module, site, site_cli):
    """Check mode asks the site to plan (--check), never to execute, in observe mode by
    default, with the site's OTPATCH_HOME."""
    cli = site_cli()
    outcome = run_module(site_rollout.main, rollout_task(site, cli), check_mode=True)
    assert not outcome.failed, outcome
    assert outcome.result['argv'] == base_argv(site) + ['--check']
    assert outcome.result['otpatch_home'] == site['home']
    assert outcome.result['host_key'] is None
    assert outcome.result['changed'] is False


def test_execute_carries_every_option_to_the_site(run_module, site, site_cli, tmp_path):
    """An execute run names the pinned hash, the params, the stage, the operator and the
    evidence; the host key reaches the CLI as OTPATCH_HOST_KEY."""
    cli = site_cli()
    host_key = str(tmp_path / 'keys' / 'host.key')
    outcome = run_module(site_rollout.main, rollout_task(
        site, cli, playbook_sha256='ab' * 32, params={'target_firmware': '3.20'},
        mode='execute', fleet_mode='execute', stage='production', operator='Chen Wei',
        evidence=['rec-1', 'rec-2'], host_key=host_key))
    assert not outcome.failed, outcome
    assert outcome.result['argv'] == base_argv(site, 'execute') + [
        '--playbook-sha256', 'ab' * 32, '-e', 'target_firmware=3.20', '--execute',
        '--stage', 'production', '--operator', 'Chen Wei',
        '--evidence', 'rec-1', '--evidence', 'rec-2']
    assert outcome.result['host_key'] == host_key


def test_params_reach_the_site_as_text_in_name_order(run_module, site, site_cli):
    """Params are `-e NAME=VALUE` sorted by name; values that are not text go as JSON."""
    cli = site_cli()
    outcome = run_module(site_rollout.main, rollout_task(
        site, cli, params={'zone': 'cell-4', 'retries': 3, 'window': {'minutes': 45}}))
    argv = outcome.result['argv']
    extras = [argv[i + 1] for i, arg in enumerate(argv) if arg == '-e']
    assert extras == ['retries=3', 'window={"minutes": 45}', 'zone=cell-4']


def test_dry_run_is_the_default_mode(run_module, site, site_cli):
    """Without mode, the site runs against its simulators: no --execute."""
    cli = site_cli()
    outcome = run_module(site_rollout.main, rollout_task(site, cli, fleet_mode='execute'))
    assert outcome.result['argv'] == base_argv(site, 'execute')


def test_resume_continues_the_named_run(run_module, site, site_cli):
    """resume=true with run_id continues that run at the site."""
    cli = site_cli()
    outcome = run_module(site_rollout.main, rollout_task(
        site, cli, fleet_mode='execute', resume=True, run_id='run-0042'))
    assert outcome.result['argv'] == base_argv(site, 'execute') + ['--resume', 'run-0042']


def test_resume_without_run_id_fails_before_the_site_is_asked(run_module, site, site_cli):
    """resume=true needs run_id; the task fails and the site's otpatch never runs."""
    cli = site_cli()
    outcome = run_module(site_rollout.main, rollout_task(site, cli, resume=True))
    assert outcome.failed
    assert 'resume is True but all of the following are missing: run_id' in outcome.result['msg']
    assert cli.calls() == []


def test_unknown_mode_is_refused(run_module, site, site_cli):
    """mode is dry_run or execute, nothing else."""
    cli = site_cli()
    outcome = run_module(site_rollout.main, rollout_task(site, cli, mode='live'))
    assert outcome.failed
    assert 'value of mode must be one of: dry_run, execute, got: live' in outcome.result['msg']
    assert cli.calls() == []


def test_playbook_inventory_and_home_are_required(run_module, site_cli):
    """Without the site's files there is nothing to run."""
    cli = site_cli()
    outcome = run_module(site_rollout.main, dict(cli=cli.path))
    assert outcome.failed
    assert outcome.result['msg'] == 'missing required arguments: home, inventory, playbook'


def test_path_options_expand_the_home_directory(run_module, site, site_cli, monkeypatch,
                                                tmp_path):
    """playbook, inventory and home are paths: `~` is the module user's home."""
    monkeypatch.setenv('HOME', str(tmp_path / 'operator'))
    cli = site_cli()
    outcome = run_module(site_rollout.main, rollout_task(
        dict(site, playbook='~/playbooks/pb.yml', home='~/otpatch-home'), cli))
    assert outcome.result['argv'][2] == str(tmp_path / 'operator' / 'playbooks' / 'pb.yml')
    assert outcome.result['otpatch_home'] == str(tmp_path / 'operator' / 'otpatch-home')


def test_a_site_awaiting_signoff_fails_the_task_with_the_roles(run_module, site, site_cli):
    """The site's failed document fails the task, its state and missing roles kept."""
    document = {'changed': True, 'failed': True, 'state': 'awaiting_signoff',
                'gate': 'approve_production', 'missing_roles': ['process_owner'],
                'run_id': 'run-0042', 'msg': 'waiting for sign-off: process_owner'}
    cli = site_cli(stdout=json.dumps(document))
    outcome = run_module(site_rollout.main, rollout_task(site, cli, fleet_mode='execute'))
    assert outcome.failed
    assert outcome.result['state'] == 'awaiting_signoff'
    assert outcome.result['missing_roles'] == ['process_owner']
    assert outcome.result['msg'] == 'waiting for sign-off: process_owner'


def test_a_deferred_site_does_not_fail(run_module, site, site_cli):
    """A closed window defers the site: not failed, not changed."""
    document = {'changed': False, 'state': 'deferred', 'msg': 'window closed'}
    cli = site_cli(stdout=json.dumps(document))
    outcome = run_module(site_rollout.main, rollout_task(site, cli, fleet_mode='execute'))
    assert not outcome.failed
    assert outcome.result['state'] == 'deferred'
    assert outcome.result['changed'] is False


def test_output_that_is_not_json_is_a_one_line_refusal(run_module, site, site_cli):
    """A CLI that prints no JSON fails the task with its last line and its status."""
    cli = site_cli(stdout='', rc=2, stderr='Traceback (most recent call last):\n  ...\n'
                   'otpatch: error: inventory not found: site/inventory.yml\n')
    outcome = run_module(site_rollout.main, rollout_task(site, cli))
    assert outcome.failed
    assert outcome.result['msg'] == 'otpatch: error: inventory not found: site/inventory.yml'
    assert outcome.result['state'] == 'refused'
    assert outcome.result['rc'] == 2


def test_a_silent_cli_is_named_with_its_status(run_module, site, site_cli):
    """A CLI that prints nothing at all: the failure says so, with its exit status."""
    cli = site_cli(stdout='', rc=3)
    outcome = run_module(site_rollout.main, rollout_task(site, cli))
    assert outcome.failed
    assert outcome.result['msg'] == 'the otpatch CLI printed nothing (rc 3)'


def test_json_that_is_not_an_object_is_refused(run_module, site, site_cli):
    """Only a JSON object is a result document."""
    cli = site_cli(stdout='["completed"]')
    outcome = run_module(site_rollout.main, rollout_task(site, cli))
    assert outcome.failed
    assert outcome.result['msg'] == 'the otpatch CLI printed JSON that is not an object'


def test_without_cli_or_otpatch_the_task_names_the_missing_library(run_module, site,
                                                                   monkeypatch):
    """No cli option and no otpatch importable: a refusal naming otpatch and the cli way."""
    monkeypatch.setattr(otpatch_site, 'HAS_OTPATCH', False)
    outcome = run_module(site_rollout.main, dict(site))
    assert outcome.failed
    assert outcome.result['state'] == 'refused'
    assert 'Failed to import the required Python library (otpatch)' in outcome.result['msg']
    assert "set cli: to the site's otpatch command" in outcome.result['msg']


def test_the_module_runs_the_cli_it_was_given(run_module, site, site_cli):
    """Exactly one call of the given command per task."""
    cli = site_cli()
    run_module(site_rollout.main, rollout_task(site, cli))
    assert cli.calls() == [base_argv(site)]
