# -*- coding: utf-8 -*-
# Copyright: otpatch maintainers
# Apache License 2.0 (see the otpatch repository)
"""How the otpatch.fleet modules reach the site's otpatch: its Python API when the module's
Python (ansible_python_interpreter) has otpatch installed, else its CLI (the `cli` option:
`otpatch fleet site-rollout|site-status --json`). Both give the same result documents
(otpatch's engine/fleet_site.py and engine/fleet_status.py); this file only carries the
options across and turns otpatch's refusals into one-line failures."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import traceback

try:
    from otpatch.engine import fleet_site, fleet_status
    from otpatch.modules.contract.errors import OtpatchError
    HAS_OTPATCH = True
    OTPATCH_IMPORT_ERROR = None
except ImportError:
    HAS_OTPATCH = False
    OTPATCH_IMPORT_ERROR = traceback.format_exc()
    OtpatchError = Exception


# The options both modules take to find the site's otpatch (doc_fragments/site.py).
SITE_ARGUMENTS = dict(
    inventory=dict(type='path', required=True),
    home=dict(type='path', required=True),
    host_key=dict(type='path'),
    cli=dict(type='str'),
)


def rollout(module):
    """site_rollout's result: from the API, or from `CLI fleet site-rollout --json`."""
    p = module.params
    if p['cli']:
        return _by_cli(module, _rollout_argv(p, module.check_mode), p['home'])
    _require_otpatch(module)
    from otpatch.engine.keys import host_key_path
    from otpatch.engine.registerkeys import pinned_keys_path

    home = p['home']
    try:
        _load_site_plugins()
        ask = fleet_site.SiteRollout(
            p['playbook'], p['inventory'], _path(home),
            playbook_sha256=p['playbook_sha256'], params=_params(p['params']),
            mode=p['mode'], fleet_mode=p['fleet_mode'], check=module.check_mode,
            stage=p['stage'], operator=p['operator'],
            host_key=_path(p['host_key']) if p['host_key'] else host_key_path(_path(home)),
            evidence=tuple(p['evidence'] or ()), resume=p['resume'], run_id=p['run_id'],
            resume_paused=p['resume_paused'], register_keys=pinned_keys_path())
        return fleet_site.rollout(ask)
    except OtpatchError as e:
        return _refused(e)


def status(module):
    """site_status's result."""
    p = module.params
    if p['cli']:
        argv = ['fleet', 'site-status', '-i', p['inventory'], '--json']
        if p['playbook']:
            argv += ['--playbook', p['playbook']]
        return _by_cli(module, argv, p['home'])
    _require_otpatch(module)
    try:
        _load_site_plugins()
        return fleet_status.site_status(p['inventory'], _path(p['home']), p['playbook'])
    except OtpatchError as e:
        return _refused(e)


def _load_site_plugins():
    """The site's registry, as its CLI loads it: the built-in packages and the plugins
    $OTPATCH_MODULE_PLUGINS names on the site host."""
    from otpatch.engine.cli import load_plugins

    load_plugins()


def finish(module, result):
    """End the task with the site's result: failed when the site says so."""
    if result.pop('failed', False):
        module.fail_json(**result)
    module.exit_json(**result)


def _refused(error):
    """otpatch refused before anything ran (bad files, a damaged journal, ...): one line."""
    return {'changed': False, 'failed': True, 'state': 'refused',
            'msg': str(error).splitlines()[0] if str(error) else type(error).__name__}


def _require_otpatch(module):
    if not HAS_OTPATCH:
        from ansible.module_utils.basic import missing_required_lib

        module.fail_json(msg=missing_required_lib(
            'otpatch', reason='to run at the site (or set cli: to the site\'s otpatch '
            'command)'), exception=OTPATCH_IMPORT_ERROR, state='refused')


def _rollout_argv(p, check_mode):
    argv = ['fleet', 'site-rollout', p['playbook'], '-i', p['inventory'], '--json',
            '--fleet-mode', p['fleet_mode']]
    if p['playbook_sha256']:
        argv += ['--playbook-sha256', p['playbook_sha256']]
    for name, value in sorted(_params(p['params']).items()):
        argv += ['-e', '%s=%s' % (name, value)]
    if p['mode'] == 'execute':
        argv.append('--execute')
    if check_mode:
        argv.append('--check')
    for flag, key in (('--stage', 'stage'), ('--operator', 'operator')):
        if p[key]:
            argv += [flag, p[key]]
    for record in p['evidence'] or ():
        argv += ['--evidence', record]
    if p['resume']:
        argv += ['--resume', p['run_id']]
    elif p['resume_paused']:
        argv.append('--resume-paused')
    return argv


def _by_cli(module, argv, home):
    """Run the site's otpatch CLI with OTPATCH_HOME=home; its JSON document, or a failure
    naming what it printed when it printed none."""
    env = dict(os.environ, OTPATCH_HOME=home)
    if module.params.get('host_key'):
        env['OTPATCH_HOST_KEY'] = module.params['host_key']
    rc, out, err = module.run_command([module.params['cli']] + argv, environ_update=env)
    try:
        doc = json.loads(out)
    except ValueError:
        line = (err or out or '').strip().splitlines()
        return {'changed': False, 'failed': True, 'state': 'refused', 'rc': rc,
                'msg': line[-1] if line else 'the otpatch CLI printed nothing (rc %d)' % rc}
    if not isinstance(doc, dict):
        return {'changed': False, 'failed': True, 'state': 'refused',
                'msg': 'the otpatch CLI printed JSON that is not an object'}
    return doc


def _params(params):
    """The procedure's params as text, as `-e NAME=VALUE` gives them."""
    return dict((str(k), v if isinstance(v, str) else json.dumps(v))
                for k, v in (params or {}).items())


def _path(text):
    from pathlib import Path

    return Path(os.path.expanduser(text))
