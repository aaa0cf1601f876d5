"""An offline stand-in for pip's get-pip.py, for ansible-test's pip bootstrap.

What it is: ansible-test creates each sanity (and --venv) virtual environment without pip,
then bootstraps pip in it with get-pip.py. It reads that script from the cache file
~/.ansible/test/cache/get_pip_<pip version, dots as underscores>.py, and only downloads it
from https://ci-files.testing.ansible.com/ansible-test/get-pip-<pip version>.py when that
file is missing (ansible_test/_util/target/setup/requirements.py, function ``bootstrap``).
It runs the cached file as ``__main__`` (through ansible_test/_util/target/setup/
quiet_pip.py) with the new environment's Python and get-pip's arguments, e.g.
``--disable-pip-version-check pip==24.2 --no-setuptools --no-wheel``.

Why it exists: ci-files.testing.ansible.com is not reachable from otpatch's test machines
and CI; only the package registries are. ansible/ansible#77304 describes the workaround:
put a get-pip script in that cache. tests/test_fleet_collection.py copies this file there,
under a HOME of its own, for the ansible-test runs it makes. Nothing is downloaded but the
packages asked for, from the index pip is configured with.

What it does, as get-pip does, but without a pip embedded in the script: it runs pip from
the pip wheel the standard library bundles for ensurepip (pip runs from a wheel on its
path, as get-pip runs it from its embedded zip) to ``pip install --upgrade
--force-reinstall <the arguments given> pip [setuptools] [wheel]``. get-pip's own flags
--no-setuptools and --no-wheel (or PIP_NO_SETUPTOOLS, PIP_NO_WHEEL) are not pip's: they
are taken out and leave setuptools, or wheel, out of the implicit packages; so is a package
already installed (get-pip's include_setuptools and include_wheel).
"""
from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import re
import subprocess
import sys
import sysconfig


def split_arguments(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """get-pip's own flags, and the rest: the arguments for `pip install`."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--no-setuptools", action="store_true")
    parser.add_argument("--no-wheel", action="store_true")
    return parser.parse_known_args(argv)


def wanted(refused: bool, env_name: str, module: str) -> bool:
    """Whether get-pip would add this implicit package: refused neither by its flag nor by
    its environment variable, and not installed already."""
    return not refused and not os.environ.get(env_name) and importlib.util.find_spec(module) is None


def install_arguments(own: argparse.Namespace, pip_args: list[str]) -> list[str]:
    """The `pip install` command line get-pip runs for these arguments."""
    implicit = ["pip"]
    if wanted(own.no_setuptools, "PIP_NO_SETUPTOOLS", "setuptools"):
        implicit.append("setuptools")
    if wanted(own.no_wheel, "PIP_NO_WHEEL", "wheel"):
        implicit.append("wheel")
    return ["install", "--upgrade", "--force-reinstall", *pip_args, *implicit]


def wheel_version(path: str) -> tuple[int, ...]:
    """pip-23.2.1-py3-none-any.whl -> (23, 2, 1)."""
    return tuple(int(part) for part in re.findall(r"\d+", os.path.basename(path).split("-")[1]))


def bundled_pip_wheel() -> str:
    """The pip wheel this Python's ensurepip installs from: the distribution's wheel
    directory when it keeps one (WHEEL_PKG_DIR, as Debian does), else ensurepip/_bundled."""
    try:
        import ensurepip
    except ImportError as error:
        sys.exit("get_pip.py: this Python has no ensurepip (%s); install its venv package "
                 "(Debian: python3-venv)" % error)
    places = [sysconfig.get_config_var("WHEEL_PKG_DIR"),
              os.path.join(os.path.dirname(ensurepip.__file__), "_bundled")]
    wheels = [wheel for place in places if place
              for wheel in glob.glob(os.path.join(place, "pip-*.whl"))]
    if not wheels:
        sys.exit("get_pip.py: no pip wheel bundled with this Python in %s"
                 % " or ".join(place for place in places if place))
    return max(wheels, key=wheel_version)


def main(argv: list[str]) -> None:
    """Install pip into this Python as get-pip.py would for argv."""
    own, pip_args = split_arguments(argv)
    command = [sys.executable, os.path.join(bundled_pip_wheel(), "pip"),
               *install_arguments(own, pip_args)]
    sys.exit(subprocess.call(command))


if __name__ == "__main__":
    main(sys.argv[1:])
