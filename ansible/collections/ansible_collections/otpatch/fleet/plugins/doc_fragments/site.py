# -*- coding: utf-8 -*-
# Copyright: otpatch maintainers
# Apache License 2.0 (see the otpatch repository)
from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """What both otpatch.fleet modules take to find the site's otpatch."""

    DOCUMENTATION = r'''
options:
  inventory:
    description: The site's otpatch inventory.
    type: path
    required: true
  home:
    description: The site's OTPATCH_HOME (its journal, keys and records).
    type: path
    required: true
  host_key:
    description: The otpatch host key that signs the journal's head (default the site's,
      C(OTPATCH_HOST_KEY) or I(home)/host.key).
    type: path
  cli:
    description: The site's otpatch command, when the module's Python has no otpatch
      installed; the module then runs C(otpatch fleet site-rollout) or
      C(otpatch fleet site-status) with C(--json).
    type: str
attributes:
  diff_mode:
    support: none
    description: No diff.
  platform:
    support: full
    platforms: posix
    description: The site's otpatch host.
requirements:
  - otpatch on the site host (importable by the module's Python, or as I(cli))
'''
