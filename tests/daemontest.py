"""Running `mailrelay run` as systemd would, and listening where systemd would listen."""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time


@contextlib.contextmanager
def running(config, umask: int = -1, **environment: str):
    """`mailrelay run` as systemd would start it (with the unit's `umask`, say 0o077), its JSON log on a pipe;
    killed if a test leaves it running."""
    process = subprocess.Popen([sys.executable, "-m", "mailrelay", "--config", str(config), "run"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=config.parent,
                               env=dict(os.environ, PYTHONUNBUFFERED="1", **environment), umask=umask)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def wait_for_event(process, lines: list[dict], name: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            time.sleep(0.05)
            continue
        if line.startswith("{"):
            lines.append(json.loads(line))
            if lines[-1]["event"] == name:
                return lines[-1]
    raise AssertionError(f"no {name} event; saw {[e['event'] for e in lines]}")


@contextlib.contextmanager
def notify_socket():
    """A datagram socket where systemd would listen, and the messages that arrive on it."""
    import socket
    import tempfile
    import threading

    directory = tempfile.mkdtemp(prefix="notify-")  # short: a socket path is at most 107 bytes
    path = os.path.join(directory, "notify")
    messages: list[tuple[float, str]] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(0.2)
        done = threading.Event()

        def receive() -> None:
            while not done.is_set():
                try:
                    messages.append((time.monotonic(), sock.recv(4096).decode()))
                except TimeoutError:
                    continue

        thread = threading.Thread(target=receive, daemon=True)
        thread.start()
        try:
            yield path, messages
        finally:
            done.set()
            thread.join(timeout=5)
            os.unlink(path)
            os.rmdir(directory)


def wait_for_message(messages: list[tuple[float, str]], text: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [message for _, message in messages if text in message]
        if found:
            return found[-1]
        time.sleep(0.05)
    raise AssertionError(f"no notify message with {text!r}; got {[m for _, m in messages]}")
