"""A private PostgreSQL from Debian's package for the test run: initdb in a temporary folder, run as an
unprivileged user (the tests run as root, which PostgreSQL refuses), on a loopback port the OS picked."""
from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from tests.servers import HOST, free_ports, wait_for_port

SUPERUSER = "postgres"
RUN_AS = "nobody"


def postgres_bin() -> Path | None:
    """The newest Debian PostgreSQL server's bin folder (/usr/lib/postgresql/N/bin), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parent.parent.name))
    return Path(found[-1]).parent if found else None


class Postgres:
    """Started on enter, stopped and removed on exit; `database()` makes a fresh database for one test."""

    def __init__(self) -> None:
        self.bin = postgres_bin()
        self.folder = Path(tempfile.mkdtemp(prefix="mailrelay-pg-"))
        self.password = secrets.token_hex(16)
        self.port = 0
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "Postgres":
        user = pwd.getpwnam(RUN_AS)
        os.chown(self.folder, user.pw_uid, user.pw_gid)
        password_file = self.folder / "password"
        password_file.write_text(self.password + "\n")
        os.chown(password_file, user.pw_uid, user.pw_gid)
        self._as_user(str(self.bin / "initdb"), "-D", str(self.folder / "data"), "-U", SUPERUSER,
                      "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={password_file}",
                      "--encoding=UTF8", "--locale=C.UTF-8")
        self.port = free_ports(1)[0]
        self._start()
        return self

    def _start(self) -> None:
        self.process = subprocess.Popen(
            ["runuser", "-u", RUN_AS, "--", str(self.bin / "postgres"), "-D", str(self.folder / "data"),
             "-p", str(self.port), "-k", str(self.folder), "-c", f"listen_addresses={HOST}"],
            stdout=subprocess.DEVNULL, stderr=open(self.folder / "server.log", "wb"))
        if not wait_for_port(self.port, 30):
            self.__exit__(None, None, None)
            raise RuntimeError(f"PostgreSQL did not start: {(self.folder / 'server.log').read_text()[-2000:]}")
        self._wait_accepting()

    def _wait_accepting(self, timeout: float = 30) -> None:
        """The port opens before the server accepts sessions ("the database system is starting up")."""
        import time

        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(self.url(), connect_timeout=5).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def restart(self, down_seconds: float = 0) -> None:
        """Stop the server (fast shutdown: every session is ended), stay down a while, start it again on
        the same port."""
        import time

        import signal

        # To the postmaster itself (runuser does not pass SIGINT on): fast shutdown, sessions ended.
        postmaster = int((self.folder / "data" / "postmaster.pid").read_text().split()[0])
        os.kill(postmaster, signal.SIGINT)
        self.process.wait(timeout=60)
        time.sleep(down_seconds)
        self._start()

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            self.process.terminate()  # smart shutdown: the server ends its sessions and stops
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}:{self.password}@{HOST}:{self.port}/{database}"

    def database(self) -> str:
        """A new, empty database; its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _as_user(self, *command: str) -> None:
        result = subprocess.run(["runuser", "-u", RUN_AS, "--", *command], capture_output=True, text=True,
                                cwd=self.folder)
        if result.returncode:
            raise RuntimeError(f"{command[0]} failed: {result.stderr[-2000:]}")
