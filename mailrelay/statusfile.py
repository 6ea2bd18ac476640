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

from mailrelay.health import Facts, facts
from mailrelay.i18n import tr
from mailrelay.state import open_store

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
    state_problem: str | None = None  # why the state file could not be read
    status_file: Path | None = None
    written_at: str | None = None  # when the service wrote the status file


def observe(state_path: Path, status_path: Path, now: datetime | None = None) -> Observation:
    """The facts from the state file if it can be read, else from the status file (with the time now)."""
    now = now or datetime.now(timezone.utc)
    problem = _unreadable(state_path)
    if problem is None:
        try:
            store = open_store(state_path, read_only=True)
            try:
                return Observation(facts(store, now), "state")
            finally:
                store.close()
        except sqlite3.Error as error:
            problem = tr(f"die Zustandsdatei {state_path} ist nicht lesbar: {error}",
                         f"the state file {state_path} cannot be read: {error}")
    try:
        written = read(status_path)
    except (OSError, ValueError, TypeError, KeyError):
        return Observation(None, "none", problem, status_path)
    return Observation(replace(written, now=now.isoformat(timespec="milliseconds")), "status_file", problem,
                       status_path, written.now)


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
