"""Semantic rules over the typed playbook that a schema cannot express; one function per rule.

Each rule takes a Playbook and the Site it is checked against (the inventory, when given)
and returns located Problems; RULES maps its stable id to what it finds, why it matters
and whether a playbook may waive it, so `otpatch validate --rules` can list them. The
safety rules live in safety.py, the stage and window checks in stages.py and windows.py."""
from __future__ import annotations

import re
from typing import Any, Callable, Iterator, NamedTuple

from otpatch.engine import lint_real, qualify, reach, safety, templating, windows
from otpatch.modules.contract.errors import Problem
from otpatch.engine.lintbase import Site, at, short, step_id, steps
from otpatch.engine.model import NO_ROLLBACK, TERMINALS, Playbook, State, Step
from otpatch.modules.contract.durations import DurationTooLong, parse_duration
from otpatch.modules.contract.yamlsrc import display_path
from otpatch.modules import registry

RESERVED_NAMES = frozenset({"params", "facts", "targets", "run", "results", "checkpoints"})
_PARAM_REF = re.compile(r"\bparams\s*(?:\.\s*([A-Za-z_]\w*)|\[\s*['\"]([^'\"]+)['\"]\s*\])")
HASH_LENGTHS = {"sha256": 64, "md5": 32}
_HEX = re.compile(r"^[0-9a-fA-F]+$")


# -- names -----------------------------------------------------------------------------------

def unknown_state(pb: Playbook, site: Site) -> list[Problem]:
    out = []
    if pb.initial not in pb.states:
        out.append(at(pb.initial_where, "unknown-state",
                      f"initial: {pb.initial!r} is not a state{_known(pb)}"))
    for state in pb.states.values():
        for kind, dest in state.edges():
            if dest not in pb.states and dest not in TERMINALS:
                where = state.edge_where.get(kind, state.where)
                out.append(at(where, "unknown-state", f"{state.name}.{kind}: {dest!r} is neither "
                              f"a state nor a terminal ({', '.join(sorted(TERMINALS))})"))
        for req in state.requires:
            for over in req.over:
                if over not in pb.states:
                    out.append(at(req.where, "unknown-state",
                                  f"{state.name}: signoff over {over!r}: no such state"))
    for budget in pb.budgets.values():
        for name in budget.states:
            if name not in pb.states:
                out.append(at(budget.where, "unknown-state",
                              f"budget {budget.name}: {name!r} is not a state"))
    return out


def _known(pb: Playbook) -> str:
    names = sorted(pb.states)
    return f" (states: {', '.join(names[:12])}{', ...' if len(names) > 12 else ''})"


def terminal_redefined(pb: Playbook, site: Site) -> list[Problem]:
    return [at(s.where, "terminal-redefined",
               f"state {s.name!r}: the name is reserved " + (
                   "for a terminal outcome" if s.name in TERMINALS else
                   "(`rollback: none` ends an inherited rollback)"))
            for s in pb.states.values() if s.name in TERMINALS or s.name == NO_ROLLBACK]


def unknown_target(pb: Playbook, site: Site) -> list[Problem]:
    out = []
    for state, step in steps(pb):
        cls = registry.modules().get(step.module)
        for arg in registry.target_args(step.module) if cls else ():
            value = step.args.get(arg)
            if not isinstance(value, str) or templating.is_template(value):
                continue  # a template names its target at run time
            if value not in pb.targets:
                declared = ", ".join(sorted(pb.targets)) or "none"
                out.append(at(step.where, "unknown-target", f"{step_id(state, step)}: {arg}: "
                              f"{value!r} is not a declared target (declared: {declared})"))
    return out


def unknown_param(pb: Playbook, site: Site) -> list[Problem]:
    out = []
    for state, step in steps(pb):
        for text in _expressions(step):
            for name in _param_refs(text):
                if name not in pb.params:
                    out.append(at(step.where, "unknown-param", f"{step_id(state, step)}: "
                                  f"params.{name} is not a declared param{_declared(pb)}"))
    for state, step, arg, name, _ in _param_args(pb):
        if name not in pb.params:
            out.append(at(step.where, "unknown-param", f"{step_id(state, step)}: {arg}: "
                          f"{name!r} is not a declared param{_declared(pb)}"))
    for state, req in _requirements(pb, "hash_verified"):
        if req.param not in pb.params:
            out.append(at(req.where, "unknown-param", f"{state.name}: hash_verified: "
                          f"{req.param!r} is not a declared param{_declared(pb)}"))
    return out


def _declared(pb: Playbook) -> str:
    return f" (declared: {', '.join(sorted(pb.params)) or 'none'})"


def _param_refs(text: str) -> set[str]:
    return {a or b for a, b in _PARAM_REF.findall(text)}


def _param_args(pb: Playbook) -> Iterator[tuple[State, Step, str, str, Any]]:
    """(state, step, arg, the param it names, the type the module requires) for every
    argument that names a param (schema marker x-otpatch-param), templates excepted."""
    for state, step in steps(pb):
        known = step.module in registry.modules()
        for arg, kind in registry.param_args(step.module) if known else ():
            value = step.args.get(arg)
            if isinstance(value, str) and not templating.is_template(value):
                yield state, step, arg, value, kind


def requirement_param(pb: Playbook, site: Site) -> list[Problem]:
    out = [at(req.where, "requirement-param", f"{state.name}: hash_verified: param "
              f"{req.param!r} is of type {pb.params[req.param].type}, not firmware")
           for state, req in _requirements(pb, "hash_verified")
           if req.param in pb.params and pb.params[req.param].type != "firmware"]
    out += [at(step.where, "requirement-param", f"{step_id(state, step)}: {arg}: param "
               f"{name!r} is of type {pb.params[name].type}, not {kind}")
            for state, step, arg, name, kind in _param_args(pb)
            if isinstance(kind, str) and name in pb.params and pb.params[name].type != kind]
    return out


def duplicate_name(pb: Playbook, site: Site) -> list[Problem]:
    out, registers = [], {}
    for state in pb.states.values():
        names: set[str] = set()
        for step in state.do:
            if step.name and step.name in names:
                out.append(at(step.where, "duplicate-name",
                              f"{state.name}: two steps named {step.name!r}"))
            names.add(step.name)
            out.extend(_register_problems(state, step, registers))
    return out


def _register_problems(state: State, step: Step, seen: dict) -> list[Problem]:
    name = step.register
    if not name:
        return []
    if name in RESERVED_NAMES:
        reserved = ", ".join(sorted(RESERVED_NAMES))
        return [at(step.where, "duplicate-name", f"{step_id(state, step)}: register "
                   f"{name!r} shadows a reserved template name ({reserved})")]
    if name in seen:
        return [at(step.where, "duplicate-name", f"{step_id(state, step)}: register {name!r} "
                   f"is already used in state {seen[name]}")]
    seen[name] = state.name
    return []


# -- modules ---------------------------------------------------------------------------------

def unknown_module(pb: Playbook, site: Site) -> list[Problem]:
    return [at(step.where, "unknown-module", f"{step_id(state, step)}: "
               f"{registry.UnknownModule(step.module)}")
            for state, step in steps(pb) if step.module not in registry.modules()]


def module_args(pb: Playbook, site: Site) -> list[Problem]:
    from otpatch.modules.contract.values import thaw
    out = []
    for state, step in steps(pb):
        if step.module not in registry.modules():
            continue
        for path, message in registry.arg_problems(step.module, thaw(step.args),
                                                   templated_ok=True):
            arg = display_path(path) or "arguments"
            out.append(at(step.where, "module-args",
                          f"{step_id(state, step)}: {step.module} {arg}: {short(message)}"))
    return out


def duration_bound(pb: Playbook, site: Site) -> list[Problem]:
    out = []
    for state, step in steps(pb):
        cls = registry.modules().get(step.module)
        props = cls.args_schema.get("properties", {}) if cls else {}
        for key, value in step.args.items():
            if not props.get(key, {}).get("x-otpatch-duration") or templating.is_template(value):
                continue
            try:
                parse_duration(value)
            except DurationTooLong as e:
                out.append(at(step.where, "duration-bound",
                              f"{step_id(state, step)}: {step.module} {key}: {e}"))
            except ValueError:
                continue  # a malformed one is a module-args problem
    return out


def template_syntax(pb: Playbook, site: Site) -> list[Problem]:
    out = []
    for state, step in steps(pb):
        for text in _expressions(step):
            error = templating.check(text)
            if error:
                out.append(at(step.where, "template-syntax",
                              f"{step_id(state, step)}: {short(text)}: {error}"))
    return out


def _expressions(step: Step) -> Iterator[str]:
    """Every template string in the args; raw expression args (assert `that`) as templates."""
    cls = registry.modules().get(step.module)
    raw = getattr(cls, "raw_args", frozenset()) if cls else frozenset()
    for key, value in step.args.items():
        for text in _strings(value):
            if key in raw:
                yield "{{ " + text + " }}"
            elif templating.is_template(text):
                yield text


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif hasattr(value, "items"):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


# -- paths -----------------------------------------------------------------------------------

def unreachable_state(pb: Playbook, site: Site) -> list[Problem]:
    if pb.initial not in pb.states:
        return []  # reported once, as unknown-state, not once per state
    seen = reach.reachable(pb)
    return [at(s.where, "unreachable-state", f"state {s.name!r} cannot be reached from "
               f"initial ({pb.initial})") for s in pb.states.values() if s.name not in seen]


def no_terminal_path(pb: Playbook, site: Site) -> list[Problem]:
    active = reach.active_rollbacks(pb)
    finishing = reach.can_finish(pb, active)
    return [at(pb.states[name].where, "no-terminal-path", f"state {name!r}: no path from it "
               f"reaches an end ({', '.join(sorted(TERMINALS))})")
            for name in pb.states if name in active and name not in finishing]


def rollback_uncovered(pb: Playbook, site: Site) -> list[Problem]:
    active, region = reach.active_rollbacks(pb), reach.rollback_region(pb)
    out = []
    for name, rollbacks in active.items():
        state = pb.states[name]
        if name in region or reach.covered(rollbacks) or not _changes_device(state):
            continue
        out.append(at(state.where, "rollback-uncovered", f"state {name!r} changes a device "
                      "but some path reaches it with no rollback edge: declare `rollback: "
                      "STATE` here or on every state before it"))
    return out


def checkpoint_missing(pb: Playbook, site: Site) -> list[Problem]:
    region = reach.rollback_region(pb)
    bare = reach.reachable(pb, kinds=frozenset({"next", "on_failure"}),
                           through=lambda s: not s.checkpoint)
    return [at(pb.states[name].where, "checkpoint-missing", f"state {name!r} changes a device "
               "but a path reaches it through no `checkpoint` (snapshot the as-found state "
               "first)")
            for name in sorted(bare) if not pb.states[name].checkpoint
            and name not in region and _changes_device(pb.states[name])]


def _changes_device(state: State) -> bool:
    return any(getattr(registry.modules().get(s.module), "changes_device", False)
               for s in state.do)


# -- firmware and time -----------------------------------------------------------------------

def firmware_unpinned(pb: Playbook, site: Site) -> list[Problem]:
    out = []
    for spec in pb.params.values():
        if spec.type != "firmware" or spec.default is None:
            continue
        image = spec.default
        want = HASH_LENGTHS.get(image.algorithm, 64)
        if not image.hash:
            out.append(at(spec.where, "firmware-unpinned", f"param {spec.name!r}: no `hash`: "
                          "pin the vendor's published hash"))
        elif len(image.hash) != want or not _HEX.match(image.hash):
            out.append(at(spec.where, "firmware-unpinned", f"param {spec.name!r}: hash is not "
                          f"{want} hex digits ({image.algorithm})"))
    return out


def budget_over(pb: Playbook, site: Site) -> list[Problem]:
    from otpatch.modules.contract.durations import format_duration
    from otpatch.engine.plan import budget_check

    out = []
    for budget in pb.budgets.values():
        check = budget_check(pb, budget)
        if not check.within:
            out.append(at(budget.where, "budget-over", f"budget {budget.name}: expected "
                          f"{format_duration(check.expected)} on the path "
                          f"({', '.join(check.states)}) > limit "
                          f"{format_duration(budget.limit)}"))
    return out


# -- helpers and the table -------------------------------------------------------------------

def _requirements(pb: Playbook, kind: str) -> Iterator[tuple[State, Any]]:
    for state in pb.states.values():
        for req in state.requires:
            if req.kind == kind:
                yield state, req


class Rule(NamedTuple):
    description: str
    check: Callable[[Playbook, Site], list[Problem]]
    why: str = ""
    waivable: bool = False  # a playbook may set it aside with `waive:` and a reason


RULES: dict[str, Rule] = {
    "unknown-state": Rule("an edge, initial, signoff `over` or budget names no state",
                          unknown_state, "a name that resolves to nothing is a typo the "
                          "run would meet halfway"),
    "terminal-redefined": Rule("a state is named like a terminal outcome (or `none`)",
                               terminal_redefined, "completed, rolled_back and aborted must "
                               "mean what they say in every record"),
    "unknown-target": Rule("a step argument names a target that is not declared",
                           unknown_target, "a step must touch only devices the playbook "
                           "declares, so the inventory decides which hosts they are"),
    "unknown-param": Rule("a template or hash_verified names a param that is not declared",
                          unknown_param, "an undeclared param renders as nothing at run time"),
    "requirement-param": Rule("hash_verified names a param that is not of type firmware",
                              requirement_param, "only a firmware param carries a pinned hash "
                              "to verify against"),
    "unreachable-state": Rule("a state cannot be reached from initial", unreachable_state,
                              "dead procedure text hides what really runs"),
    "no-terminal-path": Rule("a reachable state from which no terminal can be reached",
                             no_terminal_path, "a run must always be able to end"),
    "rollback-uncovered": Rule("a device-changing state without an active rollback edge",
                               rollback_uncovered, "a change that fails must have a way back "
                               "to the device as found"),
    "rollback-unverified": Rule("a rollback edge that does not change the device back and "
                                "check it by read-back before its end",
                                safety.rollback_unverified, "a rollback that is not read "
                                "back can say rolled_back while the device runs the new "
                                "firmware"),
    "change-unverified": Rule("a device change not followed by a read-back check of it on "
                              "some path to completed", safety.change_unverified,
                              "completed must mean the device was seen in the state the "
                              "change intended", waivable=True),
    "checkpoint-missing": Rule("a device-changing state reachable without a checkpoint",
                               checkpoint_missing, "as-found facts are what a rollback "
                               "restores and the record compares against", waivable=True),
    "production-without-signoff": Rule("a production state reachable without a sign-off "
                                       "naming two roles",
                                       safety.production_without_signoff,
                                       "IEC 62443-2-3: production is changed only after the "
                                       "lab and staging results are signed off"),
    "signoff-dual": Rule("a production sign-off that two different people cannot give",
                         safety.signoff_dual, "IEC 62443-3-3 SR 2.1 RE(4): dual approval, "
                         "two roles held by two people"),
    "attest-role-unheld": Rule("an attestation names a role no approver of the inventory "
                               "holds", safety.attest_role_unheld, "nobody could ever "
                               "confirm it: the run would stop at it, in a dry run too"),
    "production-without-window": Rule("a production device change reachable without a "
                                      "`window` requirement",
                                      safety.production_without_window,
                                      "production is changed only in a planned maintenance "
                                      "window"),
    "cycle-unbounded": Rule("a cycle of states none of which has `max_visits`",
                            safety.cycle_unbounded, "an unbounded loop never ends and fills "
                            "the journal; the engine enforces the bound at run time too"),
    "firmware-unpinned": Rule("a firmware param without a well-formed hash",
                              firmware_unpinned, "a firmware image is trusted only by the "
                              "vendor's published hash"),
    "firmware-param": Rule("a firmware image argument that is not `{{ params.NAME }}` of a "
                           "`type: firmware` param", safety.firmware_param,
                           "only a firmware param pins path, algorithm and hash, and is "
                           "verified before a gate lets it through", waivable=True),
    "unknown-module": Rule("a step calls a module that does not exist", unknown_module,
                           "a typo in a module name would fail the run mid-way"),
    "module-args": Rule("a step's arguments do not match its module's schema", module_args,
                        "bad arguments fail before anything runs, even in a dry run"),
    "duration-bound": Rule("a module's duration argument is not one, or is longer than 30 "
                           "days", duration_bound, "a wait or timeout past any maintenance "
                           "window is a typo, and would leave a run that never ends"),
    "template-syntax": Rule("a template in a step's arguments does not compile, names an "
                            "attribute that leaves the sandbox (`__class__`, `mro`), or "
                            "computes a constant past the 1 MiB bound", template_syntax,
                            "a template error would fail the run mid-way"),
    "duplicate-name": Rule("repeated step name in a state, repeated or reserved register",
                           duplicate_name, "records and templates must name one thing each"),
    lint_real.RULE: Rule(lint_real.DESCRIPTION, lint_real.simulator_interface, lint_real.WHY),
    qualify.RULE: Rule(qualify.DESCRIPTION, qualify.qualification_problems, qualify.WHY),
    "budget-over": Rule("a time budget's states on the path expect more than its limit",
                        budget_over, "a procedure that cannot meet its own patch window or "
                        "downtime budget should not be approved as is", waivable=True),
}
WAIVER_RULE = "waiver-invalid"


def lint(pb: Playbook, inventory: Any | None = None) -> list[Problem]:
    """Every problem every rule finds, against the inventory when given, sorted by position;
    waived rules left out (the run record shows the waivers)."""
    site = Site.of(pb, inventory)
    problems = [p for rule in RULES.values() for p in rule.check(pb, site)]
    problems += site.stages.problems
    if inventory is not None:
        problems += windows.window_problems(pb, inventory)
    waived = {w.rule for w in pb.waivers if RULES.get(w.rule, Rule("", None)).waivable}
    problems = [p for p in problems if p.rule not in waived] + _waiver_problems(pb)
    return sorted(problems, key=lambda p: (p.file, p.line, p.col, p.rule))


def _waiver_problems(pb: Playbook) -> list[Problem]:
    out = []
    for w in pb.waivers:
        rule = RULES.get(w.rule)
        if rule is None:
            known = ", ".join(sorted(k for k, r in RULES.items() if r.waivable))
            out.append(at(w.where, WAIVER_RULE, f"waive: no rule {w.rule!r} (waivable: "
                          f"{known})"))
        elif not rule.waivable:
            out.append(at(w.where, WAIVER_RULE, f"waive: {w.rule} cannot be waived: "
                          f"{rule.why}"))
    return out
