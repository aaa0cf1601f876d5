"""The environment ansible-playbook gets: otpatch's own, without its secrets, plus these."""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping

# Names that hold a secret by convention, whatever the inventory says (case-insensitive).
SECRET_NAME = re.compile(r".*_(PASSWORD|TOKEN|KEY|SECRET)\Z", re.IGNORECASE)


def ansible_envvars(private_data_dir: Path, environ: Mapping[str, str] = os.environ,
                    bin_dir: Path | None = None) -> dict[str, str]:
    """ansible-runner starts ansible-playbook with `environ` updated by these."""
    env = {
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        # the controller's temp files stay with the step's artifacts, not in ~/.ansible/tmp
        "ANSIBLE_LOCAL_TEMP": str(private_data_dir / "tmp"),
    }
    # ansible-runner turns host key checking off unless told otherwise; keep Ansible's default
    # (on) unless the operator's environment chose.
    if "ANSIBLE_HOST_KEY_CHECKING" not in environ:
        env["ANSIBLE_HOST_KEY_CHECKING"] = "True"
    # ansible-core refuses to start without a UTF-8 locale.
    if not utf8_locale(environ):
        env["LC_ALL"] = "C.UTF-8"
    # ansible-playbook is found on PATH; the one installed beside this Python comes first
    # (an otpatch in a virtualenv that is not activated).
    bin_dir = bin_dir or Path(sys.executable).parent
    if (bin_dir / "ansible-playbook").exists():
        env["PATH"] = os.pathsep.join(p for p in (str(bin_dir), environ.get("PATH", "")) if p)
    return env


def utf8_locale(environ: Mapping[str, str]) -> bool:
    """Whether the locale the child process gets (LC_ALL, else LC_CTYPE, else LANG) is UTF-8."""
    for var in ("LC_ALL", "LC_CTYPE", "LANG"):
        value = environ.get(var)
        if value:
            return "utf8" in value.lower().replace("-", "")
    return False


def scrubbed(env: Mapping[str, str], secret_names: Iterable[str] = ()) -> dict[str, str]:
    """`env` without the variables that hold secrets: every name in `secret_names` (the
    inventory's `password_env`) and every `*_PASSWORD`, `*_TOKEN`, `*_KEY`, `*_SECRET`.
    ansible-runner writes the environment it starts ansible-playbook with into its artifacts,
    so a secret left in it would be on disk for as long as the run is kept."""
    named = set(secret_names)
    return {k: v for k, v in env.items() if k not in named and not SECRET_NAME.match(k)}


def inventory_secret_names(inventory: Any) -> set[str]:
    """The environment variables the inventory's hosts name as `password_env`."""
    hosts = getattr(inventory, "hosts", None) or {}
    return {str(host.credentials["password_env"]) for host in hosts.values()
            if host.credentials.get("password_env")}
