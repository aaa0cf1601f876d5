"""A simulated fleet on this machine (tests/test_fleet_sites.py, bench/fleet.py): N plants,
each with its own otpatch inventory, its own OTPATCH_HOME and its own simulators (one M580
CPU, one mGuard, on free loopback ports), and a fleet inventory naming each plant as an
`ansible_connection: local` host. All the simulators run in one lab (engine/simlab.py
start_lab) started from one generated inventory; each site's inventory names only its own
two devices, with its own maintenance window."""
from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator, Mapping

import yaml  # PyYAML comes with ansible-core

ROOT = Path(__file__).resolve().parents[1]
SITE_LAB = ROOT / "fleet" / "site-lab.yml"
SITE_CHECK = ROOT / "fleet" / "site-check.yml"
PASSWORD_ENV = "OTPATCH_LAB_MGUARD_PASSWORD"


@dataclass(frozen=True)
class Fleet:
    inventory: Path  # the fleet inventory (Ansible)
    sites: Mapping[str, tuple[Path, Path]]  # site -> (its otpatch inventory, its home)
    lab: object  # the running simulators (engine/simlab.py Lab)


def window_now(hours_before: float = 1, hours_after: float = 4) -> tuple[str, str]:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    return ((now - timedelta(hours=hours_before)).isoformat(),
            (now + timedelta(hours=hours_after)).isoformat())


@contextlib.contextmanager
def simulated_fleet(folder: Path, names: list[str], groups: Mapping[str, list[str]],
                    *, windows: Mapping[str, tuple[str, str]] | None = None,
                    faults: tuple[str, ...] = (), fleet_mode: str = "execute",
                    extra_vars: Mapping[str, Mapping] | None = None,
                    cpu_firmware: Mapping[str, str] | None = None) -> Iterator[Fleet]:
    """The fleet of `names`, grouped in inventory order by `groups`; `windows`: a site's
    production window (default: from an hour ago to four hours on); `faults`: simulator
    faults as start_lab takes them (NAME@HOST, a host named SITE-plc or SITE-mguard);
    `cpu_firmware`: a site whose CPU runs (and whose inventory types) other firmware.
    Every simulator is stopped afterwards."""
    from otpatch.engine.simlab import start_lab

    os.environ.setdefault(PASSWORD_ENV, "fleet-lab")  # the simulated mGuards' password
    folder.mkdir(parents=True, exist_ok=True)
    template = yaml.safe_load(SITE_LAB.read_text())
    lab_file = folder / "fleet-lab.yml"
    lab_file.write_text(yaml.safe_dump(_lab_inventory(template, names, cpu_firmware or {}),
                                       sort_keys=False))
    with start_lab(lab_file, faults, ephemeral=True, out_dir=folder / "lab") as lab:
        bound = yaml.safe_load(Path(lab.inventory).read_text())
        sites = {}
        for i, name in enumerate(names):
            window = (windows or {}).get(name) or window_now()
            sites[name] = _write_site(folder, name, i, template, bound, window)
        inventory = _fleet_inventory(folder, sites, groups, fleet_mode, extra_vars or {})
        yield Fleet(inventory, sites, lab)


def _hosts(name: str, i: int, template: dict, firmware: str | None) -> dict[str, dict]:
    """The site's two simulators, named after it, with serials and (placeholder) ports of
    their own: the lab binds free ports and rewrites each host's own in its copy."""
    kids = template["all"]["children"]
    cpu = dict(kids["plant_cpus"]["hosts"]["site-plc-1"], serial_number=f"SIM-M580-{i:04d}",
               endpoints={"modbus": f"127.0.0.1:{20000 + i}", "enip": f"127.0.0.1:{22000 + i}"})
    if firmware:
        cpu["firmware"] = firmware
    fw = dict(kids["plant_firewalls"]["hosts"]["site-mguard-1"],
              serial_number=f"SIM-MGUARD-{i:04d}", endpoints={"https": f"127.0.0.1:{24000 + i}"})
    return {"plant_cpus": {f"{name}-plc": cpu}, "plant_firewalls": {f"{name}-mguard": fw}}


def _lab_inventory(template: dict, names: list[str], firmware: Mapping[str, str]) -> dict:
    groups: dict[str, dict] = {"plant_cpus": {}, "plant_firewalls": {}}
    for i, name in enumerate(names):
        for group, hosts in _hosts(name, i, template, firmware.get(name)).items():
            groups[group].update(hosts)
    kids = template["all"]["children"]
    return {"all": {"vars": template["all"]["vars"], "children": {
        g: {"vars": kids[g]["vars"], "hosts": hosts} for g, hosts in groups.items()}}}


def _write_site(folder: Path, name: str, i: int, template: dict, bound: dict,
                window: tuple[str, str]) -> tuple[Path, Path]:
    """The site's otpatch inventory (its two hosts as the lab bound them, its window) and
    its home."""
    kids = bound["all"]["children"]
    groups = {}
    for group in ("plant_cpus", "plant_firewalls"):
        suffix = "plc" if group == "plant_cpus" else "mguard"
        groups[group] = {"vars": kids[group]["vars"],
                         "hosts": {f"{name}-{suffix}": kids[group]["hosts"][f"{name}-{suffix}"]}}
    site_vars = dict(template["all"]["vars"],
                     maintenance_windows={"production": {"start": window[0], "end": window[1]}})
    path = folder / "sites" / f"{name}.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"all": {"vars": site_vars, "children": groups}},
                                   sort_keys=False))
    return path, folder / "homes" / name


def _fleet_inventory(folder: Path, sites: Mapping[str, tuple[Path, Path]],
                     groups: Mapping[str, list[str]], fleet_mode: str,
                     extra_vars: Mapping[str, Mapping]) -> Path:
    def host(name: str) -> dict:
        inventory, home = sites[name]
        return {"otpatch_site": str(inventory), "otpatch_home": str(home),
                "otpatch_fleet_mode": fleet_mode, **extra_vars.get(name, {})}

    body = {"all": {"vars": {"ansible_connection": "local",
                             "ansible_python_interpreter": sys.executable},
                    "children": {g: {"hosts": {h: host(h) for h in hosts}}
                                 for g, hosts in groups.items()}}}
    path = folder / "fleet.yml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path
