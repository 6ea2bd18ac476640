"""Running the relay for the benchmark: its config, `once` as a process, and the daemon with its log."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

from psycopg.conninfo import conninfo_to_dict

from tests.relaytest import write_config
from tests.servers import Dovecot, SmtpSink

_SQLITE_STATE = '[state]\npath = "state.sqlite"\n'  # the state table tests.relaytest.write_config writes
NO_BRAKES = 100_000  # the flood brakes must not stop a benchmark that forwards thousands at once
# Runs `mailrelay` in-process and reports the process's own peak RSS (kB) on stderr at the end. VmHWM,
# not getrusage's ru_maxrss: on Linux that also counts the parent's RSS at fork, before exec, and the
# benchmark process holding hundreds of MB of test mail would be reported as the relay's peak.
_RSS_WRAPPER = ("import sys\n"
                "from mailrelay.cli import main\n"
                "code = main(sys.argv[1:])\n"
                "peak = open('/proc/self/status').read().split('VmHWM:')[1].split()[0]\n"
                "print('BENCH_MAXRSS_KB', peak, file=sys.stderr)\n"
                "sys.exit(code)\n")


def relay_config(directory: Path, dovecot: Dovecot, user: str, sink: SmtpSink, *, idle: bool = False, archive: str = "move",
                 poll_seconds: int = 600) -> Path:
    """The test suite's config (TLS to Dovecot, plain SMTP to the sink), brakes off, fresh state in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    path = write_config(directory, dovecot, user, sink,
                        schedule=f"retry_min_seconds = 0\npoll_seconds = {poll_seconds}")
    (directory / "imap.secret").chmod(0o600)
    imap = f'idle = {str(idle).lower()}\narchive = "{archive}"\n'
    relay = (f"max_forwards_per_poll = {NO_BRAKES}\nmax_forwards_per_sender_per_hour = {NO_BRAKES}\n"
             f"max_forwards_per_thread_per_hour = {NO_BRAKES}\n")
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("[imap]\n", "[imap]\n" + imap, 1).replace("[relay]\n", "[relay]\n" + relay, 1),
                    encoding="utf-8")
    return path


def share_state(config: Path, database_url: str, node: str, failover_seconds: float = 30) -> Path:
    """The config with its SQLite file swapped for a PostgreSQL database (its password in a file beside it)
    and this node's name in the lease; the config's path."""
    parts = conninfo_to_dict(database_url)
    secret = config.parent / "state.secret"
    secret.write_text(parts.pop("password") + "\n", encoding="utf-8")
    secret.chmod(0o600)
    url = f"postgresql://{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}"
    state = (f'[state]\nurl = "{url}"\npassword_file = "{secret.name}"\nnode = "{node}"\n'
             f"failover_seconds = {failover_seconds}\n")
    text = config.read_text(encoding="utf-8")
    if _SQLITE_STATE not in text:
        raise RuntimeError(f"{config} has no [state] table naming the SQLite file")
    config.write_text(text.replace(_SQLITE_STATE, state, 1), encoding="utf-8")
    return config


@dataclass(frozen=True)
class OnceRun:
    """One `mailrelay once` process: its wall time, exit code, poll events and (if measured) peak RSS."""

    wall: float
    returncode: int
    events: list[dict]
    max_rss_kb: int | None = None
    stderr: str = ""

    @property
    def poll_seconds(self) -> float | None:
        """The poll's own time: from `poll.started` to `poll.finished` in its log."""
        times = {event["event"]: _time(event) for event in self.events}
        if "poll.started" not in times or "poll.finished" not in times:
            return None
        return times["poll.finished"] - times["poll.started"]

    @property
    def counts(self) -> dict[str, int]:
        """The outcomes `poll.finished` reports (forwarded, ignored, quarantined, ...)."""
        finished = [event for event in self.events if event["event"] == "poll.finished"]
        skip = {"event", "level", "timestamp", "audit_records", "audit_head"}
        return {key: value for key, value in (finished[-1] if finished else {}).items() if key not in skip}


def run_once(config: Path, measure_rss: bool = False, timeout: float = 7200, profile: Path | None = None) -> OnceRun:
    """`python3 -m mailrelay --config CFG once` (or the RSS wrapper around the same entry point); with
    `profile`, under cProfile, its statistics written to that file."""
    command = ([sys.executable, "-c", _RSS_WRAPPER] if measure_rss else [sys.executable, "-m", "mailrelay"])
    if profile is not None:
        command = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "mailrelay"]
    log = config.parent / "once.log"
    with log.open("wb") as stdout:
        began = time.perf_counter()
        result = subprocess.run([*command, "--config", str(config), "once"], stdout=stdout,
                                stderr=subprocess.PIPE, cwd=config.parent, timeout=timeout)
        wall = time.perf_counter() - began
    stderr = result.stderr.decode(errors="replace")
    rss = [int(line.split()[1]) for line in stderr.splitlines() if line.startswith("BENCH_MAXRSS_KB ")]
    return OnceRun(wall, result.returncode, _poll_events(log), rss[0] if rss else None, stderr)


def _poll_events(log: Path) -> list[dict]:
    """The poll.* lines of a JSON log; the per-mail lines are many and not needed here."""
    with log.open("rb") as lines:
        return [json.loads(line) for line in lines if line.startswith(b"{") and b'"poll.' in line]


def _time(event: dict) -> float:
    return datetime.fromisoformat(event["timestamp"]).timestamp()


@dataclass
class DaemonLog:
    """The daemon's JSON events as they arrive, read by a thread so the pipe never fills."""

    events: list[dict] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def follow(self, stream) -> None:
        for line in stream:
            if line.startswith("{"):
                with self.changed:
                    self.events.append(json.loads(line))
                    self.changed.notify_all()

    def count(self, name: str) -> int:
        with self.changed:
            return sum(1 for event in self.events if event["event"] == name)

    def wait(self, test: Callable[[], bool], timeout: float) -> bool:
        """Whether `test` (called under the lock, on each new event) came true within `timeout`."""
        with self.changed:
            return self.changed.wait_for(test, timeout)

    def wait_count(self, name: str, at_least: int, timeout: float) -> bool:
        return self.wait(lambda: sum(1 for event in self.events if event["event"] == name) >= at_least, timeout)


class Daemon:
    """`mailrelay run` as systemd would start it; stopped with SIGTERM, killed only if it does not stop."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.log = DaemonLog()
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Daemon:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mailrelay", "--config", str(self.config), "run"], stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, cwd=self.config.parent, env=dict(os.environ, PYTHONUNBUFFERED="1"))
        threading.Thread(target=self.log.follow, args=(self.process.stdout,), daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM and wait; the exit code, or None if it had to be killed."""
        process = self.process
        if process is None or process.poll() is not None:
            return process.returncode if process else None
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return None

    def memory_kb(self) -> dict[str, int]:
        """VmRSS and VmHWM of the daemon process, in kB."""
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        fields = (line.split() for line in status.splitlines())
        return {parts[0].rstrip(":"): int(parts[1]) for parts in fields if parts and parts[0] in ("VmRSS:", "VmHWM:")}
