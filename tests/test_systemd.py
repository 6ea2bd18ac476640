"""The service unit: hardened, valid for systemd, and keeping what the relay relies on."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[1] / "systemd" / "mailrelay.service"
INSTALL_PATH = "/usr/local/bin/mailrelay"
MAX_EXPOSURE = 1.5
# The copy under test gets a name no host has drop-ins for, so /etc/systemd/system/mailrelay.service.d
# on a machine that runs the relay does not change what is checked.
COPY_NAME = "mailrelay-under-test.service"


def _require(program: str, hint: str) -> str:
    """The program's path; without it the test fails in CI and is skipped elsewhere."""
    path = shutil.which(program)
    if path is None:
        message = f"{program} is not installed ({hint})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def _analyze(tmp_path: Path, unit_text: str, *args: str) -> tuple[int, str, list[str]]:
    """Run systemd-analyze on a copy of the unit: its return code, its output, and the lines about the unit."""
    analyze = _require("systemd-analyze", "apt-get install systemd")
    copy = tmp_path / COPY_NAME
    copy.write_text(unit_text)
    result = subprocess.run([analyze, *args, str(copy)], capture_output=True, text=True, timeout=60)
    # Lines about other units on this machine (in containers there are some) are not ours to fix.
    output = result.stdout + result.stderr
    return result.returncode, output, [line for line in output.splitlines() if COPY_NAME in line]


def _settings(unit_text: str) -> dict[str, list[str]]:
    """Each `Section.Key` of the unit with its values in order (keys such as LoadCredential repeat)."""
    settings: dict[str, list[str]] = {}
    section = ""
    for line in map(str.strip, unit_text.splitlines()):
        if line.startswith("["):
            section = line.strip("[]")
        elif line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            settings.setdefault(f"{section}.{key}", []).append(value)
    return settings


def test_security_exposure_is_at_most_1_5(tmp_path: Path) -> None:
    """`systemd-analyze security --offline=yes` rates the unit's overall exposure 1.5 or lower."""
    returncode, output, _ = _analyze(tmp_path, UNIT.read_text(), "security", "--offline=yes")
    overall = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", output)
    assert returncode == 0 and overall, output
    assert float(overall.group(1)) <= MAX_EXPOSURE, output


def test_verify_is_clean_with_the_installed_script(tmp_path: Path) -> None:
    """`systemd-analyze verify` finds nothing to report once the unit points at the installed script."""
    script = _require("mailrelay", "pip install -e .")
    text = UNIT.read_text()
    assert text.count(INSTALL_PATH) == 2, f"ExecStartPre and ExecStart should run {INSTALL_PATH}"
    returncode, _, lines = _analyze(tmp_path, text.replace(INSTALL_PATH, script), "verify")
    assert returncode == 0 and lines == [], "\n".join(lines)


def test_unit_keeps_what_the_relay_relies_on() -> None:
    """Readiness and watchdog, reload by SIGHUP, both passwords as credentials, a dynamic user with state."""
    settings = _settings(UNIT.read_text())
    service = {key.removeprefix("Service."): values for key, values in settings.items()}
    assert service["Type"] == ["notify"] and service["NotifyAccess"] == ["main"]
    assert service["WatchdogSec"][-1] not in ("", "0", "infinity")
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert service["ExecStartPre"] == [f"{INSTALL_PATH} --config /etc/mailrelay/mailrelay.toml check"]
    assert service["ExecStart"] == [f"{INSTALL_PATH} --config /etc/mailrelay/mailrelay.toml run"]
    assert {value.partition(":")[0] for value in service["LoadCredential"]} == {"imap-password", "smtp-password"}
    assert service["DynamicUser"] == ["yes"] and service["StateDirectory"] == ["mailrelay"]
    assert service["RuntimeDirectory"] == ["mailrelay"] and service["RuntimeDirectoryMode"] == ["0755"]
    assert service["ConfigurationDirectory"] == ["mailrelay"] and service["Restart"] == ["on-failure"]
    assert service["TimeoutStopSec"] == ["12min"]
    assert "Unit.StartLimitIntervalSec" in settings and "Unit.StartLimitBurst" in settings


def test_documentation_names_the_readme_that_the_install_steps_put_there() -> None:
    """`Documentation=` is the README that setup.cfg installs as data under the virtual environment the
    README's install steps create, so `systemctl help mailrelay` finds it on a machine set up that way."""
    import configparser

    setup = configparser.ConfigParser()
    setup.read(UNIT.parents[1] / "setup.cfg")
    data_files = {key.strip(): value.split() for key, value in setup["options.data_files"].items()}
    assert data_files["share/doc/mailrelay"] == ["README.md"]
    readme = (UNIT.parents[1] / "README.md").read_text()
    venv = re.search(r"python3 -m venv (\S+)", readme).group(1)
    assert _settings(UNIT.read_text())["Unit.Documentation"] == [f"file:{venv}/share/doc/mailrelay/README.md"]
    assert f"{venv}/bin/pip install" in readme
