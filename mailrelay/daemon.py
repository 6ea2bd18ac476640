"""The long-running service: APScheduler runs the polls; signals reload and stop it."""
from __future__ import annotations

import queue
import signal
from datetime import datetime, timedelta, timezone

from apscheduler.schedulers.background import BackgroundScheduler

from mailrelay.app import PolicyHolder
from mailrelay.logs import get_logger
from mailrelay.runner import Relay
from mailrelay.sources.base import SourceError
from mailrelay.tomlcheck import ConfigError

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_MAX_BACKOFF = 900.0  # seconds between polls at most while the servers cannot be reached


class Daemon:
    def __init__(self, relay: Relay, policy: PolicyHolder, poll_seconds: float):
        self.relay = relay
        self.policy = policy
        self.poll_seconds = poll_seconds
        self.log = get_logger()
        # Signal handlers only queue the signal (SimpleQueue.put is safe there); the main
        # thread acts on it. A handler that logged could deadlock on the log's own lock.
        self.signals: queue.SimpleQueue[int] = queue.SimpleQueue()
        # One worker: polls run one after another, never side by side.
        self.scheduler = BackgroundScheduler(executors={"default": {"type": "threadpool", "max_workers": 1}})
        self.failures = 0  # polls in a row that could not reach the servers

    def run(self) -> None:
        """Poll now and then every poll_seconds until SIGTERM or SIGINT; SIGHUP reloads."""
        for signum in _STOP_SIGNALS + (signal.SIGHUP,):
            signal.signal(signum, lambda received, frame: self.signals.put(received))
        # A poll still running when the next is due is not doubled: the late one is skipped.
        self.scheduler.add_job(self.poll, "interval", seconds=self.poll_seconds, id="poll",
                               max_instances=1, coalesce=True, next_run_time=datetime.now(timezone.utc))
        self.scheduler.start()
        self.log.info("daemon.started", poll_seconds=self.poll_seconds, rules_version=self.policy().version)
        while (signum := self.signals.get()) not in _STOP_SIGNALS:
            self.reload()
        self.log.info("daemon.stopping", signal=signal.Signals(signum).name)
        self.relay.stop_requested = True  # the mail in hand is finished, the rest wait for the next start
        self.scheduler.shutdown(wait=True)
        self.log.info("daemon.stopped")

    def poll(self) -> None:
        try:
            self.relay.poll()
        except SourceError as error:
            self.failures += 1
            wait = min(self.poll_seconds * 2 ** min(self.failures - 1, 16), max(self.poll_seconds, _MAX_BACKOFF))
            self.log.error("poll.failed", error=str(error), failures=self.failures, next_poll_in=wait)
            # Back off while the server is away, so a long outage is not a connection attempt a second.
            self.scheduler.modify_job("poll", next_run_time=datetime.now(timezone.utc) + timedelta(seconds=wait))
            return
        except Exception:  # the next poll starts afresh; the traceback goes to the log
            self.log.exception("poll.crashed")
        if self.failures:
            self.log.info("poll.recovered", after_failures=self.failures)
        self.failures = 0

    def reload(self) -> None:
        """Swap in freshly loaded rules, signals and templates; on any problem keep the old ones."""
        try:
            version = self.policy.reload().version
        except ConfigError as error:
            problems = [str(p) for p in error.problems]
            self.log.error("config.reload_refused", problems=problems, rules_version=self.policy().version)
            self.relay.store.event(None, "config.reload_refused", {"problems": problems})
            return
        self.log.info("config.reloaded", rules_version=version)
        self.relay.store.event(None, "config.reloaded", {"rules_version": version})
