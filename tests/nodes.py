"""Several `mailrelay run` nodes on one mailbox and one PostgreSQL state, for the failover tests and the
benchmark: each node its own config (its name), log file and status folder."""
from __future__ import annotations

import email
import email.policy
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from tests.helpers import REPO
from tests.relaytest import write_config


def shared_config(directory: Path, dovecot, user: str, sink, database_url: str, node: str,
                  failover_seconds: float = 3, schedule: str = "poll_seconds = 2\nretry_min_seconds = 0",
                  imap_port: int | None = None, metrics_port: int | None = None) -> Path:
    """A node's config: the test servers, the shared database (its password from a file) and its name."""
    directory.mkdir(parents=True, exist_ok=True)
    config = write_config(directory, dovecot, user, sink, schedule=schedule, imap_port=imap_port)
    parts = psycopg.conninfo.conninfo_to_dict(database_url)
    (directory / "state.secret").write_text(parts.pop("password") + "\n", encoding="utf-8")
    (directory / "state.secret").chmod(0o600)
    url = f"postgresql://{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}"
    state = (f'[state]\nurl = "{url}"\npassword_file = "state.secret"\nnode = "{node}"\n'
             f"failover_seconds = {failover_seconds}\n")
    text = config.read_text().replace('[state]\npath = "state.sqlite"\n', state)
    # Backlogs repeat a few senders: the per-sender breaker would (rightly) stop them.
    text = text.replace('id = "test-relay"', 'id = "test-relay"\nmax_forwards_per_sender_per_hour = 100000\n'
                                             "max_forwards_per_poll = 100000")
    if metrics_port:
        text += f'\n[metrics]\nlisten = "127.0.0.1:{metrics_port}"\n'
    config.write_text(text, encoding="utf-8")
    return config


def scrape(port: int, name: str) -> float | None:
    """One metric's value from a node's Prometheus endpoint."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return None


class Node:
    """One `mailrelay run`, its JSON log in a file (read as it grows)."""

    def __init__(self, config: Path, name: str):
        self.config, self.name = config, name
        self.log_path = config.parent / "node.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> "Node":
        runtime = self.config.parent / "run"
        runtime.mkdir(exist_ok=True)
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mailrelay", "--config", str(self.config), "run"], cwd=self.config.parent,
            stdout=self.log, stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONUNBUFFERED="1", RUNTIME_DIRECTORY=str(runtime)))
        return self

    def events(self) -> list[dict]:
        found = []
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except ValueError:
                    pass
        return found

    def saw(self, event: str) -> list[dict]:
        return [line for line in self.events() if line.get("event") == event]

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 60) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGCONT)
            self.process.send_signal(signal.SIGUSR1)  # the service writes every thread's stack to its log
            time.sleep(1)
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"{self.name} did not stop; its log:\n{self.log_path.read_text()[-20000:]}")
        finally:
            self.log.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self.log.close()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def lease(database_url: str) -> dict:
    """The lease row; before the first node has made the tables, or with the database down, no holder."""
    try:
        with psycopg.connect(database_url, row_factory=dict_row, connect_timeout=5) as db:
            return db.execute("SELECT epoch, holder, backend_pid, renewed FROM lease WHERE id = 1").fetchone()
    except (psycopg.errors.UndefinedTable, psycopg.OperationalError):
        return {"epoch": None, "holder": None, "backend_pid": None, "renewed": None}


def wait_for(condition, timeout: float, what: str, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"not within {timeout} s: {what}")


def active_holder(database_url: str, names: set[str]) -> str | None:
    row = lease(database_url)
    return row["holder"] if row["holder"] in names and row["renewed"] is not None else None


def forwarded_ids(sink) -> Counter:
    """How often each original (by its In-Reply-To) reached the desks."""
    return Counter(email.message_from_bytes(r.data, policy=email.policy.compat32)["In-Reply-To"]
                   for r in sink.received if _is_forward(r.data))


def _is_forward(data: bytes) -> bool:
    return re.search(rb"^In-Reply-To:", data, re.M) is not None


def forward_message_ids(sink) -> Counter:
    """How often each forward's own Message-ID was sent: a repeat is the same forward sent twice."""
    return Counter(email.message_from_bytes(r.data, policy=email.policy.compat32)["Message-ID"]
                   for r in sink.received if _is_forward(r.data))


def split_url(url: str) -> tuple[str, str]:
    """(the password, the URL without it) of a test database's URL."""
    parts = psycopg.conninfo.conninfo_to_dict(url)
    return parts["password"], f"postgresql://{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}"


def maildir_config(directory: Path, database_url: str, node: str = "node-a") -> Path:
    """A config with a Maildir source, an outbox folder and the shared database (no mail servers)."""
    password, url = split_url(database_url)
    (directory / "db.secret").write_text(password + "\n")
    (directory / "db.secret").chmod(0o600)
    config = directory / "mailrelay.toml"
    config.write_text(f'rules = "{REPO / "config" / "routing.toml"}"\nsignals = "{REPO / "config" / "signals.toml"}"\n'
                      f'templates = "{REPO / "templates"}"\n'
                      f'[maildir]\npath = "maildir"\n[outbox]\npath = "outbox"\n[relay]\nfrom_address = "r@example.de"\n'
                      f'[state]\nurl = "{url}"\npassword_file = "db.secret"\nnode = "{node}"\n', encoding="utf-8")
    return config
