"""Playbooks for tests and benches: typed ones from compact dicts, generated YAML chains."""
from __future__ import annotations

from typing import Any, Mapping

from otpatch.modules.contract.canonical import canonical_hash
from otpatch.engine.model import (Budget, FirmwareImage, Metadata, ParamSpec, Playbook,
                                  Requirement, Stage, State, Step, TargetSpec)
from otpatch.modules.contract.values import freeze
from otpatch.modules.contract.durations import parse_duration


def playbook(spec: Mapping[str, Any]) -> Playbook:
    """A Playbook from a dict shaped like the YAML (keys as in a playbook file).

    `states` is required; `initial` defaults to the first state; `name`/`version`/`standard`
    stand for metadata; a step is a module name or `{module: {args}}`; durations are
    `8m`-style text. Nothing is validated: tests may build what the loader would refuse.
    """
    states = {name: state(name, body or {}) for name, body in spec["states"].items()}
    return Playbook(
        path=spec.get("path", "<factory>"), api_version="otpatch/v1",
        metadata=Metadata(name=spec.get("name", "test-playbook"),
                          version=spec.get("version", "1.0.0"),
                          standard=spec.get("standard", "")),
        params={n: param(n, body) for n, body in spec.get("params", {}).items()},
        targets={n: target(n, body) for n, body in spec.get("targets", {}).items()},
        initial=spec.get("initial", next(iter(states))),
        states=states,
        budgets={n: budget(n, body) for n, body in spec.get("budgets", {}).items()},
        content_hash=spec.get("content_hash") or "sha256:" + canonical_hash(spec))


def state(name: str, body: Mapping[str, Any]) -> State:
    expect = body.get("expect_duration")
    return State(
        name=name, stage=Stage(body["stage"]) if body.get("stage") else None,
        requires=tuple(requirement(r) for r in body.get("requires", ())),
        checkpoint=body.get("checkpoint"), do=tuple(step(s) for s in body.get("do", ())),
        expect_duration=None if expect is None else parse_duration(expect),
        next=body.get("next"), on_failure=body.get("on_failure"),
        rollback=body.get("rollback"))


def requirement(body: Mapping[str, Any]) -> Requirement:
    """`{hash_verified: firmware}`, `{signoff: {roles: [...], over: state}}`, `{window: w}`."""
    (kind, value), = body.items()
    if kind == "hash_verified":
        return Requirement(kind, param=value)
    if kind == "signoff":
        over = value.get("over") or ()
        return Requirement(kind, roles=tuple(value["roles"]),
                           over=(over,) if isinstance(over, str) else tuple(over))
    return Requirement(kind, window=value)


def step(body: str | Mapping[str, Any]) -> Step:
    """`module` or `{module: {args}}`; a `name` key beside the module names the step."""
    if isinstance(body, str):
        return Step(module=body, args=freeze({}))
    body = dict(body)
    name = body.pop("name", "")
    (module, args), = body.items()
    return Step(module=module, args=freeze(dict(args or {})), name=name)


def param(name: str, body: Mapping[str, Any]) -> ParamSpec:
    default = body.get("default")
    if body.get("type") == "firmware" and "hash" in body:
        default = FirmwareImage(body.get("path", "fw.bin"), body.get("algorithm", "sha256"),
                                body["hash"])
    return ParamSpec(name=name, type=body.get("type", "string"), default=default,
                     required=bool(body.get("required")))


def target(name: str, body: str | Mapping[str, Any]) -> TargetSpec:
    """`group_name` or `{group: g, many: true}`."""
    if isinstance(body, str):
        return TargetSpec(name=name, group=body)
    return TargetSpec(name=name, group=body["group"], many=bool(body.get("many")))


def budget(name: str, body: Mapping[str, Any]) -> Budget:
    return Budget(name=name, limit=parse_duration(body["limit"]), states=tuple(body["states"]))


def chain_playbook(n: int) -> str:
    """A valid playbook of n states in a chain, each with a checkpoint, a device-changing
    step and a registered wait, all covered by one restore state."""
    lines = ["apiVersion: otpatch/v1", "kind: Playbook",
             "metadata: {name: generated-chain, version: 1.0.0}",
             "params:", "  soak: {type: duration, default: 4h}",
             "targets:", "  plc: {group: m580_cpus}",
             "initial: s0", "states:"]
    for i in range(n):
        following = f"s{i + 1}" if i < n - 1 else "completed"
        lines += [f"  s{i}:", "    stage: lab", f"    checkpoint: as_found_{i}",
                  "    do:",
                  f"      - name: settle {i}",
                  '        core.wait: {duration: "{{ params.soak }}"}',
                  f"        register: settled_{i}",
                  "      - ansible.playbook: {playbook: flash.yml, verify: check_mode}",
                  "    expect_duration: 8m", f"    next: {following}",
                  "    on_failure: aborted", "    rollback: restore"]
    lines += ["  restore:", "    do:", "      - ansible.playbook: {playbook: restore.yml, verify: check_mode}",
              "    next: rolled_back", "    on_failure: aborted"]
    return "\n".join(lines) + "\n"
