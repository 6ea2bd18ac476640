"""Push delivery: a thread that waits for new mail with IMAP IDLE (RFC 2177) and wakes the poll.

The scheduled poll stays the safety net: whatever happens here (no IDLE on the server, a dropped or
silent connection, a hang in the client library) costs latency, never a mail. Every wait is bounded:
IDLE is renewed every `idle_renew_seconds` with a NOOP probe in between, every socket operation has
the server's timeout, and a connection that reports readable but yields nothing (imapclient's
idle_check swallows EOF, issue 565) counts as lost."""
from __future__ import annotations

import threading
import time
from typing import Callable

from mailrelay.config import ImapSettings
from mailrelay.logs import get_logger
from mailrelay.sources.imap import CONNECTION_ERRORS, ImapSource
from mailrelay.sources.base import SourceError

_CHECK_SECONDS = 30.0  # one idle_check at most this long, so stop requests and heartbeats are seen
_MAX_BACKOFF = 300.0


class ConnectionLost(Exception):
    """The IDLE connection stopped answering or was closed."""


class IdleWatcher:
    def __init__(self, settings: ImapSettings, wake: Callable[[str], None]):
        self.settings = settings
        self.wake = wake  # called with the reason; the daemon runs a poll soon after
        self.log = get_logger()
        self._stop = threading.Event()
        self._client = None
        self._thread = threading.Thread(target=self._run, name="imap-idle", daemon=True)
        self._idling_since: float | None = None
        self.supported: bool | None = None  # None until a connection said whether the server offers IDLE

    def start(self) -> None:
        self._thread.start()

    @property
    def connected(self) -> bool:
        """Whether an IDLE connection is up and waiting for new mail (for the metrics)."""
        return self._idling_since is not None

    def stop(self) -> None:
        self._stop.set()
        client = self._client
        if client is not None:  # unblocks a read in the watcher thread
            try:
                client.shutdown()
            except Exception:  # already gone
                pass
        self._thread.join(timeout=10)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._watch()
                return  # the server has no IDLE, or we were asked to stop
            except (ConnectionLost, SourceError, *CONNECTION_ERRORS) as error:
                if self._stop.is_set():
                    return
                # A connection that idled for a while before it was lost starts the backoff afresh.
                lasted = self._idling_since is not None and time.monotonic() - self._idling_since > 60
                failures = 1 if lasted else failures + 1
                wait = min(2.0 ** (failures - 1), _MAX_BACKOFF)
                self.log.warning("idle.lost", error=f"{type(error).__name__}: {error}", reconnect_in=wait)
            except ValueError:  # "readline of closed file": stop() shut the connection under a read
                if self._stop.is_set():
                    return
                raise
            finally:
                self._close()
            if self._stop.wait(wait):
                return

    def _watch(self) -> None:
        client = ImapSource(self.settings).connect()
        self._client = client
        client.select_folder(self.settings.mailbox, readonly=True)
        if not client.has_capability("IDLE"):
            self.supported = False
            self.log.warning("idle.unsupported", hint="the scheduled polls carry on alone")
            return
        self.supported = True
        self._idling_since = time.monotonic()
        self.log.info("idle.started", mailbox=self.settings.mailbox, renew_seconds=self.settings.idle_renew_seconds)
        self.wake("idle connected")  # catch up on whatever came while we were not watching
        while not self._stop.is_set():
            client.idle()
            if self._wait_for_mail(client):
                client.idle_done()
                self.wake("new mail")
            else:
                client.idle_done()
                client.noop()  # the probe: a silent connection times out here instead of idling forever

    def _wait_for_mail(self, client) -> bool:
        """Idle until a new mail is announced (True) or it is time to renew (False)."""
        renew_at = time.monotonic() + self.settings.idle_renew_seconds
        while not self._stop.is_set():
            left = renew_at - time.monotonic()
            if left <= 0:
                return False
            timeout = min(_CHECK_SECONDS, left)
            began = time.monotonic()
            responses = client.idle_check(timeout=timeout)
            if any(len(item) > 1 and item[1] in (b"EXISTS", b"RECENT") for item in responses):
                return True
            if not responses and time.monotonic() - began < timeout / 2:
                # Readable but nothing parsed: idle_check met EOF and said nothing.
                raise ConnectionLost("the server closed the IDLE connection")
        return False

    def _close(self) -> None:
        client, self._client, self._idling_since = self._client, None, None
        if client is not None:
            try:
                client.shutdown()
            except Exception:  # already gone
                pass
