"""`otpatch risk ...` commands (registered by the CLI; no heavy imports at module level)."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add `risk` and its sub-commands to the otpatch CLI."""
    p = sub.add_parser("risk", help="not implemented yet: CVSS risk scoring")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=_not_built)


def _not_built(args) -> int:
    from otpatch.engine.errors import NotImplementedFeature

    raise NotImplementedFeature("CVSS risk scoring with compensating controls")
