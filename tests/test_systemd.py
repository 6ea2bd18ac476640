"""The service units: hardened, valid for systemd, and keeping what the relay and the console rely on."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[1] / "systemd" / "mailrelay.service"
WEB_UNIT = UNIT.with_name("mailrelay-web.service")
INSTALL_PATH = "/usr/local/bin/mailrelay"
MAX_EXPOSURE = 1.5
MAX_WEB_EXPOSURE = 2.0  # the bar for the console; it scores as the relay does
# The copy under test gets a name no host has drop-ins for, so /etc/systemd/system/mailrelay.service.d
# on a machine that runs the relay does not change what is checked.
COPY_NAME = "mailrelay-under-test.service"
WEB_COPY_NAME = "mailrelay-web-under-test.service"


def _require(program: str, hint: str) -> str:
    """The program's path; without it the test fails in CI and is skipped elsewhere."""
    path = shutil.which(program)
    if path is None:
        message = f"{program} is not installed ({hint})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def _analyze(tmp_path: Path, unit_text: str, *args: str, copy_name: str = COPY_NAME) -> tuple[int, str, list[str]]:
    """Run systemd-analyze on a copy of the unit: its return code, its output, and the lines about the unit."""
    analyze = _require("systemd-analyze", "apt-get install systemd")
    copy = tmp_path / copy_name
    copy.write_text(unit_text)
    result = subprocess.run([analyze, *args, str(copy)], capture_output=True, text=True, timeout=60)
    # Lines about other units on this machine (in containers there are some) are not ours to fix.
    output = result.stdout + result.stderr
    return result.returncode, output, [line for line in output.splitlines() if copy_name in line]


def _exposure(output: str) -> float | None:
    overall = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", output)
    return float(overall.group(1)) if overall else None


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
    exposure = _exposure(output)
    assert returncode == 0 and exposure is not None, output
    assert exposure <= MAX_EXPOSURE, output


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


def _web_service() -> dict[str, list[str]]:
    return {key.removeprefix("Service."): values for key, values in _settings(WEB_UNIT.read_text()).items()}


def test_web_unit_security_exposure_is_at_most_2_0(tmp_path: Path) -> None:
    """`systemd-analyze security --offline=yes` rates the console's unit 2.0 or lower."""
    returncode, output, _ = _analyze(tmp_path, WEB_UNIT.read_text(), "security", "--offline=yes",
                                     copy_name=WEB_COPY_NAME)
    exposure = _exposure(output)
    assert returncode == 0 and exposure is not None, output
    assert exposure <= MAX_WEB_EXPOSURE, output


def test_web_unit_verify_is_clean_with_the_installed_script(tmp_path: Path) -> None:
    """`systemd-analyze verify` finds nothing to report in the console's unit pointing at the installed script."""
    script = _require("mailrelay", "pip install -e .")
    text = WEB_UNIT.read_text()
    assert text.count(INSTALL_PATH) == 1, f"ExecStart should run {INSTALL_PATH}"
    returncode, _, lines = _analyze(tmp_path, text.replace(INSTALL_PATH, script), "verify", copy_name=WEB_COPY_NAME)
    assert returncode == 0 and lines == [], "\n".join(lines)


def test_web_unit_serves_the_console_as_the_relays_user_on_its_state() -> None:
    """The console runs `web` on the relay's config as the relay's dynamic user (named after its unit, which
    sets no User=), so both may own /var/lib/mailrelay; its own files live in /var/lib/mailrelay-web."""
    relay, web = _settings(UNIT.read_text()), _web_service()
    assert "Service.User" not in relay and UNIT.stem == "mailrelay"
    assert web["ExecStart"] == [f"{INSTALL_PATH} --config /etc/mailrelay/mailrelay.toml web"]
    assert web["DynamicUser"] == ["yes"] and web["User"] == [UNIT.stem] and web["Group"] == [UNIT.stem]
    assert web["StateDirectory"] == ["mailrelay mailrelay-web"] and web["UMask"] == ["0077"]
    assert "LoadCredential" not in web  # the mail servers' passwords stay the relay's
    assert web["Restart"] == ["on-failure"] and web["Type"] == ["exec"]
    assert _settings(WEB_UNIT.read_text())["Unit.Documentation"] == relay["Unit.Documentation"]


def test_web_unit_keeps_the_relays_hardening_and_reaches_loopback_only() -> None:
    """Every hardening setting of the relay's unit is in the console's with the same value, and the network
    is loopback only."""
    relay, web = _settings(UNIT.read_text()), _web_service()
    own = {"Type", "NotifyAccess", "WatchdogSec", "ExecStartPre", "ExecStart", "ExecReload", "Restart", "RestartSec",
           "TimeoutStopSec", "StateDirectory", "RuntimeDirectory", "RuntimeDirectoryMode", "LoadCredential"}
    hardening = {key.removeprefix("Service."): values for key, values in relay.items()
                 if key.startswith("Service.") and key.removeprefix("Service.") not in own}
    assert {key: web.get(key) for key in hardening} == hardening
    assert web["IPAddressDeny"] == ["any"] and web["IPAddressAllow"] == ["localhost"]
    assert web["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX"]
