"""The floor of push latency: how soon after an APPEND a bare client idling on the mailbox hears EXISTS."""
from __future__ import annotations

import threading
import time

import imapclient

from tests.servers import Dovecot


class ExistsListener:
    """A thread idling on one mailbox that notes the moment each EXISTS arrives."""

    def __init__(self, client: imapclient.IMAPClient) -> None:
        self.client = client
        self.heard = threading.Event()
        self.heard_at = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="bench-idle-floor", daemon=True)

    def __enter__(self) -> ExistsListener:
        self.client.select_folder("INBOX", readonly=True)
        self.client.idle()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.client.idle_done()

    def _listen(self) -> None:
        while not self._stop.is_set():
            responses = self.client.idle_check(timeout=0.2)
            if any(len(item) > 1 and item[1] == b"EXISTS" for item in responses):
                self.heard_at = time.perf_counter()
                self.heard.set()


def exists_latency(dovecot: Dovecot, user: str, mails: list[bytes], timeout: float) -> list[float | None]:
    """For each mail: APPEND it, and the seconds until the idling client heard EXISTS (None: not heard)."""
    latencies: list[float | None] = []
    with dovecot.client(user) as watcher, dovecot.client(user) as appender, ExistsListener(watcher) as listener:
        for mail in mails:
            listener.heard.clear()
            began = time.perf_counter()
            appender.append("INBOX", mail)
            latencies.append(listener.heard_at - began if listener.heard.wait(timeout) else None)
    return latencies
