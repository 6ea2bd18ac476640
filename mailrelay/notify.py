"""The systemd notify protocol (sd_notify(3)): one datagram per message to $NOTIFY_SOCKET. Without that
variable (not started by systemd with Type=notify) every call does nothing."""
from __future__ import annotations

import os
import socket


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None):
        environ = dict(os.environ if environ is None else environ)
        address = environ.get("NOTIFY_SOCKET", "")
        # "@name" is a socket in the abstract namespace, spelled with a leading NUL byte.
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_seconds = _watchdog_seconds(environ)

    def send(self, *fields: str) -> bool:
        """Send `fields` (like "READY=1", "STATUS=...") as one message; False when there is nobody to tell."""
        if not self.address:
            return False
        message = "\n".join(field.replace("\n", " ") for field in fields).encode("utf-8")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self.address)
                sock.sendall(message)
        except OSError:  # systemd gone or restarting: the service goes on, as sd_notify does
            return False
        return True


def _watchdog_seconds(environ: dict[str, str]) -> float | None:
    """WatchdogSec as the service manager passed it, if it is meant for this process."""
    pid, usec = environ.get("WATCHDOG_PID"), environ.get("WATCHDOG_USEC")
    if not usec or not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    return int(usec) / 1_000_000
