"""The long-running service: APScheduler runs the polls; signals reload and stop it."""
from __future__ import annotations

import signal
import threading
from datetime import datetime, timezone

from apscheduler.schedulers.blocking import BlockingScheduler

from mailrelay.app import PolicyHolder
from mailrelay.logs import get_logger
from mailrelay.runner import Relay
from mailrelay.sources.base import SourceError
from mailrelay.tomlcheck import ConfigError


class Daemon:
    def __init__(self, relay: Relay, policy: PolicyHolder, poll_seconds: float):
        self.relay = relay
        self.policy = policy
        self.poll_seconds = poll_seconds
        self.log = get_logger()
        # One worker: polls run one after another, never side by side.
        self.scheduler = BlockingScheduler(executors={"default": {"type": "threadpool", "max_workers": 1}})

    def run(self) -> None:
        """Poll now and then every poll_seconds until SIGTERM or SIGINT."""
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGHUP, self._reload)
        # One poll at a time: a late poll is skipped, never run beside the current one.
        self.scheduler.add_job(self.poll, "interval", seconds=self.poll_seconds, id="poll",
                               max_instances=1, coalesce=True, next_run_time=_now())
        self.log.info("daemon.started", poll_seconds=self.poll_seconds, rules_version=self.policy().version)
        self.scheduler.start()
        self.log.info("daemon.stopped")

    def poll(self) -> None:
        try:
            self.relay.poll()
        except SourceError as error:
            self.log.error("poll.failed", error=str(error))
        except Exception:  # the next poll starts afresh; the traceback goes to the log
            self.log.exception("poll.crashed")

    def _stop(self, signum, frame) -> None:
        self.log.info("daemon.stopping", signal=signal.Signals(signum).name)
        self.relay.stop_requested = True
        threading.Thread(target=self.scheduler.shutdown, kwargs={"wait": True}, daemon=True).start()

    def _reload(self, signum, frame) -> None:
        try:
            version = self.policy.reload().version
        except ConfigError as error:
            self.log.error("config.reload_refused", problems=[str(p) for p in error.problems],
                           rules_version=self.policy().version)
            self.relay.store.event(None, "config.reload_refused", {"problems": [str(p) for p in error.problems]})
            return
        self.log.info("config.reloaded", rules_version=version)
        self.relay.store.event(None, "config.reloaded", {"rules_version": version})


def _now() -> datetime:
    return datetime.now(timezone.utc)
