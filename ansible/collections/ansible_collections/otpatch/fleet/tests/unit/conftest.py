# -*- coding: utf-8 -*-
# Copyright: otpatch maintainers
# Apache License 2.0 (see the otpatch repository)
"""What the otpatch.fleet unit tests share (run them with `ansible-test units`).

- ``run_module``: a module's ``main()`` run in-process as Ansible's own collection unit tests
  do it: the task's arguments through ``ansible.module_utils.testing.patch_module_args``
  (ansible-core 2.19 on; ``basic._ANSIBLE_ARGS`` before), and ``exit_json``/``fail_json``
  raising instead of printing and exiting, so the test sees the task's result.
- ``site_cli``: a stand-in for the site's otpatch CLI (the modules' ``cli`` option). It is a
  real executable in tmp_path, run by the module through ``run_command`` as the site's
  otpatch would be; it prints what the test tells it to, or by default a JSON document of
  how it was called (its arguments, OTPATCH_HOME, OTPATCH_HOST_KEY). So the CLI path is
  tested without otpatch installed in the units environment.
"""
from __future__ import annotations

import contextlib
import json
import os
import stat
import sys
from unittest import mock

import pytest
from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes


class AnsibleExitJson(Exception):
    """The module called exit_json: the task succeeded (or was skipped) with this result."""


class AnsibleFailJson(Exception):
    """The module called fail_json: the task failed with this result."""


class Outcome:
    """A task's end: whether it failed, and its result (the keyword arguments of
    exit_json or fail_json)."""

    def __init__(self, failed, result):
        self.failed = failed
        self.result = result

    def __repr__(self):
        return 'Outcome(failed=%r, result=%r)' % (self.failed, self.result)


@contextlib.contextmanager
def set_module_args(args):
    """Let AnsibleModule instances created inside read args as the task's arguments."""
    try:
        from ansible.module_utils.testing import patch_module_args
    except ImportError:  # ansible-core before 2.19: the serialized arguments themselves
        serialized = to_bytes(json.dumps({'ANSIBLE_MODULE_ARGS': args}))
        with mock.patch.object(basic, '_ANSIBLE_ARGS', serialized):
            yield
    else:
        with patch_module_args(args):
            yield


def _raise(exception):
    def end(self, **result):
        raise exception(result)
    return end


@pytest.fixture
def run_module(monkeypatch):
    """run_module(main, args, check_mode=False) -> Outcome: the module's main() as a task
    with args (in check mode if asked)."""
    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', _raise(AnsibleExitJson))
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', _raise(AnsibleFailJson))

    def run(main, args, check_mode=False):
        args = dict(args, _ansible_check_mode=check_mode)
        with set_module_args(args):
            try:
                main()
            except AnsibleExitJson as end:
                return Outcome(False, end.args[0])
            except AnsibleFailJson as end:
                return Outcome(True, end.args[0])
        raise AssertionError('main() returned without exit_json or fail_json')

    return run


STAND_IN = '''\
import json
import os
import sys

with open(%(calls)r, 'a') as calls:
    calls.write(json.dumps(sys.argv[1:]) + '\\n')
stdout = %(stdout)r
if stdout is None:
    stdout = json.dumps({'changed': False, 'state': 'planned', 'argv': sys.argv[1:],
                         'otpatch_home': os.environ.get('OTPATCH_HOME'),
                         'host_key': os.environ.get('OTPATCH_HOST_KEY')})
sys.stdout.write(stdout)
sys.stderr.write(%(stderr)r)
sys.exit(%(rc)d)
'''


class StandInCli:
    """A stand-in otpatch CLI: `path` is the command to give as the modules' cli option."""

    def __init__(self, directory, stdout=None, stderr='', rc=0):
        self.calls_file = str(directory / 'calls.jsonl')
        script = directory / 'stand_in_otpatch.py'
        script.write_text(STAND_IN % dict(calls=self.calls_file, stdout=stdout,
                                          stderr=stderr, rc=rc))
        # a short shebang and the Python by its full path: a venv's path can be longer
        # than the kernel's shebang limit
        launcher = directory / 'otpatch'
        launcher.write_text('#!/bin/sh\nexec "%s" "%s" "$@"\n' % (sys.executable, script))
        launcher.chmod(launcher.stat().st_mode | stat.S_IXUSR)
        self.path = str(launcher)

    def calls(self):
        """The arguments of each time the module ran this CLI, in order."""
        if not os.path.exists(self.calls_file):
            return []
        with open(self.calls_file) as calls:
            return [json.loads(line) for line in calls]


@pytest.fixture
def site_cli(tmp_path):
    """site_cli(stdout=None, stderr='', rc=0) -> StandInCli: a stand-in for the site's
    otpatch CLI printing stdout (default: a JSON document of how it was called)."""
    count = []

    def make(stdout=None, stderr='', rc=0):
        count.append(None)
        directory = tmp_path / ('site-cli-%d' % len(count))
        directory.mkdir()
        return StandInCli(directory, stdout=stdout, stderr=stderr, rc=rc)

    return make


@pytest.fixture
def site(tmp_path, monkeypatch):
    """The paths of one site (its playbook, inventory and OTPATCH_HOME), with no
    OTPATCH_HOST_KEY of the caller's in the module's environment."""
    monkeypatch.delenv('OTPATCH_HOST_KEY', raising=False)
    root = tmp_path / 'site'
    return dict(playbook=str(root / 'playbooks' / 'm580-firmware-update.yml'),
                inventory=str(root / 'inventory.yml'), home=str(root / 'otpatch-home'))
