# -*- coding: utf-8 -*-
# Copyright: otpatch maintainers
# Apache License 2.0 (see the otpatch repository)
"""otpatch.fleet.site_status as a task, through a stand-in site CLI (tests/unit/conftest.py):
read-only, in check mode too."""
from __future__ import annotations

import json

from ansible_collections.otpatch.fleet.plugins.modules import site_status


def status_task(site, cli, **options):
    """site_status's arguments for the site (no playbook unless given)."""
    return dict(inventory=site['inventory'], home=site['home'], cli=cli.path, **options)


def test_status_asks_the_site_for_its_json_status(run_module, site, site_cli):
    """`otpatch fleet site-status -i INVENTORY --json` with the site's OTPATCH_HOME."""
    cli = site_cli()
    outcome = run_module(site_status.main, status_task(site, cli))
    assert not outcome.failed, outcome
    assert outcome.result['argv'] == ['fleet', 'site-status', '-i', site['inventory'], '--json']
    assert outcome.result['otpatch_home'] == site['home']
    assert outcome.result['changed'] is False


def test_a_playbook_is_hashed_at_the_site(run_module, site, site_cli):
    """With playbook the site is asked for its content hash too."""
    cli = site_cli()
    outcome = run_module(site_status.main, status_task(site, cli, playbook=site['playbook']))
    assert outcome.result['argv'][-2:] == ['--playbook', site['playbook']]


def test_the_host_key_reaches_the_site_cli(run_module, site, site_cli, tmp_path):
    """host_key is passed as OTPATCH_HOST_KEY."""
    cli = site_cli()
    host_key = str(tmp_path / 'host.key')
    outcome = run_module(site_status.main, status_task(site, cli, host_key=host_key))
    assert outcome.result['host_key'] == host_key


def test_check_mode_still_reads(run_module, site, site_cli):
    """Reading changes nothing, so check mode reads as well."""
    cli = site_cli()
    outcome = run_module(site_status.main, status_task(site, cli), check_mode=True)
    assert not outcome.failed, outcome
    assert len(cli.calls()) == 1


def test_the_site_document_is_the_result(run_module, site, site_cli):
    """What the site reports (journal head, windows, ...) is the task's result as is."""
    document = {'changed': False, 'journal': {'head': {'seq': 7, 'hash': 'c0ffee'},
                                              'verified': True, 'problems': []},
                'windows': {'night': {'open': False}}, 'pending_signoffs': []}
    cli = site_cli(stdout=json.dumps(document))
    outcome = run_module(site_status.main, status_task(site, cli))
    assert outcome.result['journal'] == document['journal']
    assert outcome.result['windows'] == document['windows']


def test_a_damaged_journal_refusal_fails_the_task(run_module, site, site_cli):
    """The site refusing (its failed document) fails the task with its message."""
    document = {'changed': False, 'failed': True, 'state': 'refused',
                'msg': 'journal entry 4 does not verify'}
    cli = site_cli(stdout=json.dumps(document), rc=1)
    outcome = run_module(site_status.main, status_task(site, cli))
    assert outcome.failed
    assert outcome.result['msg'] == 'journal entry 4 does not verify'


def test_inventory_and_home_are_required(run_module, site_cli):
    """Without the site's inventory and home there is no site to read."""
    cli = site_cli()
    outcome = run_module(site_status.main, dict(cli=cli.path))
    assert outcome.failed
    assert outcome.result['msg'] == 'missing required arguments: home, inventory'
    assert cli.calls() == []
