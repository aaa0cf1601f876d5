"""The simulated mGuard itself: running configuration, firmware, phases, syslog, on its own
simulated clock. No I/O but syslog datagrams; sim.py serves it over HTTPS.

Simulated durations (seconds of simulated time):
  RESTORE_S  75   profile import: rules come back progressively and are all active after
                  75 s, inside the article's "all firewall rules restore within 90 s".
  INSTALL_S  60   firmware verify + write after the install command.   ASSUMPTION
  REBOOT_S  120   reboot; HTTPS does not answer meanwhile.              ASSUMPTION
                  (the article gives no mGuard figure; only the M580's 45-60 s)
  SYSLOG_PERIOD_S 10  a connection-log message from a LOG=yes rule.

Faults: syslog_gap (the update resets remote syslog to off: no syslog after its reboot until
the saved profile is imported again), profile_import_drops_rules
(an import leaves DROPPED_RULES fewer rules active than the profile holds),
https_cert_changed (after the firmware update's reboot the device presents a new
self-signed certificate: sim.py swaps it through `on_booted`), update_drops_rule (the
update's profile migration silently drops one packet-filter rule, UPDATE_DROPS, as a
migration bug would: the running profile, and so the next export, holds one rule fewer),
maintenance_rule_left (the update leaves behind the temporary rule a service engineer opened
for it, MAINTENANCE_RULE: SSH from the whole engineering VLAN into the control zone, as a
person forgets to remove it; the post-change check names it).

An update migrates the running profile as the firmware would (simprofile.migrate): the new
`#version`, and the 8.1 renames when it crosses 8.1.

The device plays the model it is given, on that model's platform (platform.py): an FL MGUARD
RS4000 runs 8.x and writes 8.x profiles, an FL MGUARD 4302 runs 10.x; a model and firmware
that do not go together are refused (DeviceMismatch), and so is a package of the other
platform (package.py), at the upload."""
from __future__ import annotations

import hashlib
import heapq
import itertools
import socket
import threading
import time
from typing import Any, Callable

from otpatch.modules.contract.canonical import sha256_hex
from otpatch.modules.mguard import atv, profile
from otpatch.modules.mguard.package import read_header, stand_in, version_in_name
from otpatch.modules.mguard.platform import MGUARD2, RS, Platform, classify, firmware_problem
from otpatch.modules.mguard.simprofile import migrate, plant_profile

RESTORE_S, INSTALL_S, REBOOT_S, SYSLOG_PERIOD_S = 75.0, 60.0, 120.0, 10.0
DROPPED_RULES = 3
UPDATE_DROPS = ("FW_INCOMING", 1)  # the table and 0-based row update_drops_rule loses
MAX_PERIODIC_PER_ADVANCE = 120  # a 4-hour jump must not flood the receiver
FAULTS = frozenset({"syslog_gap", "profile_import_drops_rules", "https_cert_changed",
                    "update_drops_rule", "maintenance_rule_left"})
MAINTENANCE_RULE = {"COMMENT": "TEMPORARY maintenance access for the firmware update",
                    "PROTOCOL": "tcp", "SRC_IP": "10.20.20.0/24", "SRC_PORT": "any",
                    "DST_IP": "10.10.10.0/24", "DST_PORT": "22", "TARGET": "accept",
                    "LOG": "no"}
MODEL = "FL MGUARD RS4000"
DEFAULTS = {RS.key: ("FL MGUARD RS4000", "8.8.1"), MGUARD2.key: ("FL MGUARD 4302", "10.3.1")}


def firmware_image(version: str, model: str | None = None, size: int = 64 * 1024) -> bytes:
    """A firmware package the simulator accepts (package.py's stand-in: a header line
    naming version, platform and model, then filler). Real packages are signed by Phoenix
    Contact. Without a model: for the platform whose line `version` is of."""
    return stand_in(version, model, size=size)


class DeviceMismatch(ValueError):
    """A model and a firmware that do not go together (an RS4000 on 10.x)."""


def device_model(model: str | None, firmware: str | None, who: str = "the device"
                 ) -> tuple[str, str, Platform]:
    """(model, firmware, platform) of a simulated device: what is given, the rest the
    platform's defaults (no model: the platform whose line the firmware is of)."""
    if model is None:
        key = MGUARD2.key if firmware and MGUARD2.runs(firmware) else RS.key
        model = DEFAULTS[key][0]
    platform = classify(model)
    problem = firmware_problem(model, firmware, who=who)
    if platform is None or problem:
        raise DeviceMismatch(problem or model)
    return model, firmware or DEFAULTS.get(platform.key, DEFAULTS[RS.key])[1], platform


class DeviceError(ValueError):
    """A request the device refuses; `status` is the HTTP status the server answers."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class SyslogSender:
    """UDP syslog to one collector (RFC 3164 lines), from a socket bound to `bind`."""

    def __init__(self, target: tuple[str, int], bind: str = "127.0.0.1"):
        self.target = target
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((bind, 0))

    def send(self, line: str) -> None:
        try:
            self.sock.sendto(line.encode("utf-8"), self.target)
        except OSError:
            pass  # like a real device: syslog is fire-and-forget

    def close(self) -> None:
        self.sock.close()


class MguardDevice:
    """One simulated mGuard. Thread-safe: the HTTPS handlers and the clock thread share it."""

    def __init__(self, name: str, *, firmware: str | None = None, model: str | None = None,
                 serial: str = "SIM-MGUARD-0001", part_number: str = "",
                 faults: frozenset[str] = frozenset(), syslog: SyslogSender | None = None):
        model, firmware, self.platform = device_model(model, firmware, who=name)
        self.name, self.model, self.serial, self.part_number = name, model, serial, part_number
        self.delivered_firmware, self.syslog = firmware, syslog
        self.lock = threading.RLock()
        self.now, self.epoch = 0.0, time.time()
        self.on_booted: list[Callable[[str], None]] = []
        self.on_power: list[Callable[[], None]] = []  # going down, coming up: TCP drops
        self.power_events = 0
        self._seq = itertools.count()
        self._burst, self._log_cycle = 0, itertools.count()
        self.reset(faults)

    def reset(self, faults: frozenset[str]) -> None:
        """Back to the device as delivered (its firmware, the plant profile, ready, nothing
        uploaded or scheduled), with these faults, its action counts at 0; the clock runs
        on. For a lab shared by several runs, as if each had its own device."""
        with self.lock:
            self.firmware, self.faults = self.delivered_firmware, frozenset(faults) & FAULTS
            self.config = plant_profile(self.firmware)
            self.phase = "ready"
            self.restore: dict[str, float] | None = None
            self.pending_image: dict[str, Any] | None = None
            self._events: list[tuple[float, int, Callable[[], None]]] = []
            self._schedule(SYSLOG_PERIOD_S, self._periodic_log)
            # what the device was asked to do: a crash test counts them
            self.uploads = 0  # firmware packages received
            self.installs = 0  # firmware installs started
            self.imports = 0  # configuration profiles imported

    # -- clock --------------------------------------------------------------------------------
    def advance(self, seconds: float) -> float:
        """Pass `seconds` of simulated time, firing what falls due in order."""
        with self.lock:
            end, self._burst = self.now + max(0.0, seconds), 0
            while self._events and self._events[0][0] <= end:
                due, _, action = heapq.heappop(self._events)
                self.now = max(self.now, due)
                action()
            self.now = end
            return self.now

    def _schedule(self, delay: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._events, (self.now + delay, next(self._seq), action))

    # -- status -------------------------------------------------------------------------------
    @property
    def answers_https(self) -> bool:
        return self.phase != "rebooting"

    def version(self) -> dict[str, str]:
        return {"firmware": self.firmware, "model": self.model, "serial": self.serial,
                "part_number": self.part_number}

    def state(self) -> dict[str, str]:
        return {"state": self.phase, "firmware": self.firmware, "uptime_s": f"{self.now:.0f}"}

    def rules_active(self) -> int:
        if self.restore is None:
            return profile.rule_count(self.config)
        done = min(1.0, (self.now - self.restore["start"]) / RESTORE_S)
        return int(self.restore["final"] * done)

    def restoring(self) -> bool:
        return self.restore is not None and self.now - self.restore["start"] < RESTORE_S

    def firewall(self) -> dict[str, str]:
        vlans = [str(v) for v in profile.vlans(self.config) if v is not None]
        return {"rules_active": str(self.rules_active()),
                "rules_configured": str(profile.rule_count(self.config)),
                "vlans": ",".join(vlans), "restore": "restoring" if self.restoring() else "idle"}

    def vpn(self) -> dict[str, str]:
        out = {}
        for t in profile.tunnels(self.config):
            up = t["started"] and self.phase == "ready" and not self.restoring()
            out[f"tunnel.{t['name'] or t['rid'] or t['path']}"] = "up" if up else "down"
        return out

    # -- configuration profiles ---------------------------------------------------------------
    def export_profile(self) -> str:
        return atv.dump(self.config)

    def import_profile(self, data: bytes) -> dict[str, str]:
        self._require_ready()
        try:
            doc = profile.load(data, "uploaded profile").document
        except (atv.AtvError, profile.ProfileUnreadable) as e:
            raise DeviceError(400, f"profile refused: {e}") from None
        self.config = doc
        self.imports += 1
        total = profile.rule_count(doc)
        dropped = min(DROPPED_RULES, total) if "profile_import_drops_rules" in self.faults else 0
        self.restore = {"start": self.now, "final": float(total - dropped)}
        self.log("config", f"configuration profile imported: {total} firewall rules")
        return {"accepted": "yes", "rules": str(total), "restore_s": f"{RESTORE_S:.0f}"}

    def _require_ready(self) -> None:
        if self.phase != "ready":
            raise DeviceError(409, f"busy: {self.phase}")

    # -- firmware -----------------------------------------------------------------------------
    def upload_firmware(self, data: bytes, filename: str = "") -> dict[str, str]:
        """Receive a package. The simulator's own test format names version and model; any
        other file (a real vendor package in a dry run) is taken at the version its file
        name carries, since the simulator cannot read a signed vendor package."""
        self._require_ready()
        version = self._package_version(data, filename)
        self.uploads += 1
        self.pending_image = {"version": version, "size": len(data),
                              "sha256": sha256_hex(data),
                              "md5": hashlib.md5(data, usedforsecurity=False).hexdigest()}
        self.log("update", f"firmware package {version} received")
        return {"received_size": str(len(data)), "received_sha256": self.pending_image["sha256"],
                "received_md5": self.pending_image["md5"], "image_version": version}

    def _package_version(self, data: bytes, filename: str) -> str:
        """The version a package holds; DeviceError for one of another platform."""
        header = read_header(data)
        if header:
            if header.platform is not self.platform:
                what = header.platform.describe() if header.platform else "another platform"
                raise DeviceError(400, f"package is for the {what} ({header.model}), not "
                                       f"this {self.model} ({self.platform.describe()})")
            return header.version
        named = version_in_name(filename)
        if not named:
            raise DeviceError(400, "not an mGuard firmware package this simulator can read "
                                   "(no version in its header or file name)")
        if not self.platform.runs(named):
            raise DeviceError(400, f"firmware {named} is not for this {self.model} "
                                   f"({self.platform.describe()})")
        return named

    def install_firmware(self) -> dict[str, str]:
        self._require_ready()
        if not self.pending_image:
            raise DeviceError(409, "no firmware package uploaded")
        version = self.pending_image["version"]
        self.phase, self.installs = "installing", self.installs + 1
        self.log("update", f"installing firmware {version}; reboot follows")
        self._schedule(INSTALL_S, lambda: self._go_down(version))
        return {"installing": version, "install_s": f"{INSTALL_S:.0f}",
                "reboot_s": f"{REBOOT_S:.0f}"}

    def reboot(self) -> dict[str, str]:
        self._require_ready()
        self._go_down(None)
        return {"rebooting": "yes", "reboot_s": f"{REBOOT_S:.0f}"}

    def _go_down(self, new_version: str | None) -> None:
        self.log("system", "rebooting")
        self.phase = "rebooting"
        self._power_event()
        self._schedule(REBOOT_S, lambda: self._booted(new_version))

    def _power_event(self) -> None:
        self.power_events += 1
        for hook in self.on_power:
            hook()

    def _booted(self, new_version: str | None) -> None:
        if new_version:
            self.firmware, self.pending_image = new_version, None
            self._migrate_profile(new_version)
        self.phase = "ready"
        for hook in self.on_booted:
            hook("update" if new_version else "reboot")
        self._power_event()
        self.log("system", f"started, firmware {self.firmware}")

    def _migrate_profile(self, new_version: str) -> None:
        """What the update does to the running profile, faults included."""
        migrate(self.config, new_version)
        if "syslog_gap" in self.faults:  # the update lost the remote syslog setting
            self.config.settings[profile.NAMES["syslog_enable"]] = "no"
        table, row = UPDATE_DROPS
        rules = self.config.settings.get(table)
        if "update_drops_rule" in self.faults and isinstance(rules, atv.Table) \
                and len(rules.rows) > row:
            del rules.rows[row]  # no log line: the migration bug is silent
        if "maintenance_rule_left" in self.faults and isinstance(rules, atv.Table):
            settings = dict(MAINTENANCE_RULE)
            if any("TARGET_REF" in r.settings for r in rules.rows):  # the 8.1 name, if used
                settings["TARGET_REF"] = settings.pop("TARGET")
            rules.rows.append(atv.Row(None, settings))

    # -- syslog -------------------------------------------------------------------------------
    def log(self, tag: str, text: str) -> None:
        """Send one syslog message if remote syslog is on, configured and the device is up."""
        settings = profile.syslog(self.config)
        if self.syslog is None or not settings["enabled"]:
            return
        stamp = time.strftime("%b %e %H:%M:%S", time.gmtime(self.epoch + self.now))
        self.syslog.send(f"<134>{stamp} {self.name} {tag}: {text}")

    def _periodic_log(self) -> None:
        self._schedule(SYSLOG_PERIOD_S, self._periodic_log)
        if self.phase == "rebooting" or self._burst >= MAX_PERIODIC_PER_ADVANCE:
            return
        self._burst += 1
        logged = [r for rows in profile.rules(self.config).values() for r in rows
                  if r.get("LOG") == "yes"]
        if logged:
            rule = logged[next(self._log_cycle) % len(logged)]
            self.log("firewall", _connection_line(rule))


def _connection_line(rule: dict[str, Any]) -> str:
    named = rule.get(profile.NAMES["rule_action_ref"]) or rule.get(profile.NAMES["rule_action"])
    action = "ACCEPT" if named == "accept" else "DROP"
    src = (rule.get("SRC_IP") or "0.0.0.0").split("/")[0]
    dst = (rule.get("DST_IP") or "0.0.0.0").split("/")[0]
    return (f"{action} PROTO={(rule.get('PROTOCOL') or 'all').upper()} SRC={src} DST={dst} "
            f"DPT={rule.get('DST_PORT') or 'any'} rule=\"{rule.get('COMMENT') or ''}\"")
