"""The status file for monitors: the service writes its health facts as JSON into its RuntimeDirectory
(mode 0644, replaced atomically) after each poll and reload, because under the shipped unit only the
service can read the state file. `status` reads it when it cannot read the state, and judges the facts
against the current time, so a service that stopped writing still shows as failing."""
from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from mailrelay.health import Facts, facts
from mailrelay.i18n import tr
from mailrelay.state import StoreUnavailable, open_state
from mailrelay.tomlcheck import ConfigError

if TYPE_CHECKING:
    from mailrelay.config import Settings

NAME = "status.json"
DEFAULT_DIRECTORY = Path("/run/mailrelay")  # RuntimeDirectory=mailrelay in the shipped unit


def written_path(environ: Mapping[str, str] = os.environ) -> Path | None:
    """Where the service writes: only when systemd gave it a RuntimeDirectory (the first, if several)."""
    directory = environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    return Path(directory) / NAME if directory else None


def read_path(environ: Mapping[str, str] = os.environ) -> Path:
    """Where `status` looks: the RuntimeDirectory if set (as for the service), else the unit's /run/mailrelay."""
    return written_path(environ) or DEFAULT_DIRECTORY / NAME


def write(path: Path, state: Facts) -> None:
    """Replace the file in one step, readable by anyone whatever the umask (the unit's is 0077)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.fchmod(descriptor, 0o644)
        os.write(descriptor, json.dumps(asdict(state), ensure_ascii=False, indent=1).encode("utf-8"))
    finally:
        os.close(descriptor)
    os.replace(temporary, path)


def read(path: Path) -> Facts:
    """The facts the service last wrote; OSError or ValueError when there are none to read."""
    return Facts.from_dict(json.loads(path.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class Observation:
    """What `status` could learn, and from where."""

    facts: Facts | None
    source: str  # "state", "status_file" or "none"
    state_problem: str | None = None  # why the state file or database could not be read
    status_file: Path | None = None
    written_at: str | None = None  # when the service wrote the status file


def observe(settings: Settings, status_path: Path, now: datetime | None = None) -> Observation:
    """The facts from the state store if it can be read, else from the status file (with the time now)."""
    now = now or datetime.now(timezone.utc)
    state_facts, problem = _from_state(settings, now)
    if state_facts is not None:
        return Observation(state_facts, "state")
    try:
        written = read(status_path)
    except (OSError, ValueError, TypeError, KeyError):
        return Observation(None, "none", problem, status_path)
    return Observation(replace(written, now=now.isoformat(timespec="milliseconds")), "status_file", problem,
                       status_path, written.now)


def _from_state(settings: Settings, now: datetime) -> tuple[Facts | None, str | None]:
    """The facts read from the store, or None and why they could not be."""
    if settings.state_url:
        try:
            return _read_facts(settings, now), None
        except (StoreUnavailable, ConfigError) as error:  # ConfigError: its password cannot be read here
            reason = _first_line(error.__cause__ or error)  # the driver's words, without the store's English frame
            return None, tr(f"die Zustandsdatenbank ist nicht erreichbar: {reason}",
                            f"the state database cannot be reached: {reason}")
    problem = _unreadable(settings.state_path)
    if problem:
        return None, problem
    try:
        return _read_facts(settings, now), None
    except sqlite3.Error as error:
        return None, tr(f"die Zustandsdatei {settings.state_path} ist nicht lesbar: {error}",
                        f"the state file {settings.state_path} cannot be read: {error}")


def _read_facts(settings: Settings, now: datetime) -> Facts:
    store = open_state(settings, read_only=True)
    try:
        return facts(store, now)
    finally:
        store.close()


def _unreadable(path: Path) -> str | None:
    try:
        os.stat(path)
    except FileNotFoundError:
        return tr(f"keine Zustandsdatei unter {path}", f"no state file at {path}")
    except OSError as error:
        return tr(f"die Zustandsdatei {path} ist nicht lesbar: {error.strerror}",
                  f"the state file {path} cannot be read: {error.strerror}")
    if not os.access(path, os.R_OK):
        return tr(f"die Zustandsdatei {path} ist nicht lesbar: keine Leserechte",
                  f"the state file {path} cannot be read: no read permission")
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
