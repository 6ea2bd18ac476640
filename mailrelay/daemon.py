"""The long-running service: APScheduler runs the polls; signals reload and stop it."""
from __future__ import annotations

import dataclasses
import faulthandler
import queue
import signal
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol

from apscheduler.schedulers.background import BackgroundScheduler

from mailrelay import health, reloads, statusfile
from mailrelay.app import PolicyHolder
from mailrelay.logs import get_logger
from mailrelay.metrics import Metrics
from mailrelay.notify import Notifier
from mailrelay.runner import Relay
from mailrelay.sources.base import SourceError
from mailrelay.state import LeaseLost, StoreUnavailable
from mailrelay.tomlcheck import ConfigError

if TYPE_CHECKING:
    from mailrelay.state.lease import Lease

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_STOP_REPORT_SECONDS = 20  # a stop taking longer than this dumps every thread's stack
_MAX_BACKOFF = 900.0  # seconds between polls at most while the servers cannot be reached
_LEASE_LOST = -1  # put on the signal queue when this node loses its lease: it stops working and stands by


class Watcher(Protocol):
    """Something that calls the daemon's wake() when new mail arrives (IMAP IDLE)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    @property
    def connected(self) -> bool: ...


class Daemon:
    def __init__(self, relay: Relay, policy: PolicyHolder, poll_seconds: float, notifier: Notifier | None = None,
                 watcher: Callable[[Callable[[str], None]], "Watcher"] | None = None,
                 metrics: Metrics | None = None, status_path: Path | None = None, lease: "Lease | None" = None):
        self.relay = relay
        self.policy = policy
        self.poll_seconds = poll_seconds
        self.log = get_logger()
        self.notifier = notifier or Notifier()
        # Signal handlers only queue the signal (SimpleQueue.put is safe there); the main
        # thread acts on it. A handler that logged could deadlock on the log's own lock.
        self.signals: queue.SimpleQueue[int] = queue.SimpleQueue()
        self.scheduler = _scheduler()
        self.failures = 0  # polls in a row that could not reach the servers
        self.polling = False
        self.again = False  # new mail was announced while a poll ran: poll again right after it
        self._wake_lock = threading.Lock()
        # APScheduler's shutdown(wait=True) holds its job store lock while it waits for the job in hand, so
        # a job that then changes its own schedule deadlocks both: once stopping, nothing is rescheduled.
        self._schedule_lock = threading.Lock()
        self._stopping = False
        self._new_watcher = watcher
        self.watcher: Watcher | None = None  # IMAP IDLE: polls as soon as mail arrives
        self.last_progress = time.monotonic()  # a mail handled, or a poll begun or ended
        relay.progress = self._progressed
        self.metrics = metrics
        self.status_path = status_path  # the status file for monitors; None: not written
        if metrics:
            metrics.watch_idle(lambda: bool(self.watcher and self.watcher.connected))
        self.lease = lease  # None: the only node (a SQLite state, locked by its file)
        self.role = "standby" if lease else "single"
        if lease:
            lease.on_lost = lambda why: self.signals.put(_LEASE_LOST)
            if metrics:
                metrics.watch_lease(lambda: self.role == "active" and lease.held,
                                    lambda: getattr(self.relay.store, "epoch", None) or 0)

    def run(self) -> None:
        """Poll now and then every poll_seconds until SIGTERM or SIGINT; SIGHUP reloads. With a lease,
        wait as a standby until this node holds it, and stand by again when it is lost."""
        for signum in _STOP_SIGNALS + (signal.SIGHUP,):
            signal.signal(signum, lambda received, frame: self.signals.put(received))
        faulthandler.register(signal.SIGUSR1, all_threads=True)  # kill -USR1: every thread's stack to the journal
        try:
            while self._standby() and self._active():
                pass
        finally:
            if self.lease:
                self.lease.release()

    def _standby(self) -> bool:
        """Wait until this node holds the lease (at once without one); False when told to stop first."""
        if self.lease is None:
            return True
        self.role = "standby"
        interval = min(1.0, self.lease.failover / 10)
        told = None
        while True:
            if self.lease.acquire_once():
                self.relay.store.epoch, self.relay.store.lease = self.lease.epoch, self.lease
                self.role = "active"
                return True
            said = self._standing_by(told)
            told = said
            try:
                signum = self.signals.get(timeout=interval)
            except queue.Empty:
                continue
            if signum in _STOP_SIGNALS:
                self.log.info("daemon.stopping", signal=signal.Signals(signum).name, role="standby")
                self.notifier.send("STOPPING=1", "STATUS=stopping (standby)")
                return False
            if signum == signal.SIGHUP:  # the rules are loaded, to be in force when this node takes over
                try:
                    self.log.info("config.reloaded", rules_version=self.policy.reload().version, role="standby")
                except ConfigError as error:
                    self.log.error("config.reload_refused", problems=[str(p) for p in error.problems], role="standby")

    def _standing_by(self, told: str | None) -> str:
        """Say who is active (systemd STATUS, the status file, the log when it changes); returns what was said."""
        row = self.lease.holder()
        if row is None:
            said = "standby: the state database cannot be reached; forwarding nothing until it can"
        elif row["holder"] and row["renewed"] is not None:
            said = f"standby: {row['holder']} is active (epoch {row['epoch']})"
        else:
            said = "standby: no node is active; taking over"
        if said != told:
            self.log.info("daemon.standby", node=self.lease.node, status=said,
                          holder=row["holder"] if row else None, epoch=row["epoch"] if row else None)
            self.notifier.send("READY=1", f"STATUS={said}")
            self.publish()
        return said

    def _active(self) -> bool:
        """Work until told to stop (False) or until the lease is lost (True: stand by again)."""
        self.scheduler, self._stopping = _scheduler(), False
        self.watcher = self._new_watcher(self.wake) if self._new_watcher else None
        self.relay.stop_requested = False
        self.failures = 0
        if self.lease:  # the files as they are now load: a change refused before is moot
            reloads.in_force(self.relay.store, self.policy().version)
        now = datetime.now(timezone.utc)
        # A poll still running when the next is due is not doubled: the late one is skipped.
        self.scheduler.add_job(self.poll, "interval", seconds=self.poll_seconds, id="poll",
                               max_instances=1, coalesce=True, next_run_time=now)
        self.scheduler.add_job(self.purge, "interval", days=1, id="purge", max_instances=1, coalesce=True,
                               next_run_time=now + timedelta(minutes=1))
        self.scheduler.start()
        if self.watcher:
            self.watcher.start()
        records, head = self.relay.store.audit_head()
        lease = {"node": self.lease.node, "epoch": self.lease.epoch} if self.lease else {}
        self.log.info("daemon.started", poll_seconds=self.poll_seconds, rules_version=self.policy().version,
                      watchdog_seconds=self.notifier.watchdog_seconds, audit_records=records, audit_head=head,
                      **lease)
        self.notifier.send("READY=1", "STATUS=started; first poll under way"
                           + (f" (active, epoch {self.lease.epoch})" if self.lease else ""))
        heartbeat = self.notifier.watchdog_seconds / 4 if self.notifier.watchdog_seconds else None
        while True:
            try:
                signum = self.signals.get(timeout=heartbeat)
            except queue.Empty:
                self._watchdog()
                continue
            if signum == _LEASE_LOST:
                return self._stand_down()
            if signum in _STOP_SIGNALS:
                break
            self.notifier.send("RELOADING=1", "STATUS=reloading the rules, signals and templates")
            taken = self.reload()
            self.notifier.send("READY=1", f"STATUS=rules version {self.policy().version}"
                                          + ("" if taken else " (the change was refused: mailrelay status)"))
        self.log.info("daemon.stopping", signal=signal.Signals(signum).name)
        self.notifier.send("STOPPING=1", "STATUS=stopping: finishing the mail in hand")
        self.relay.stop_requested = True  # the mail in hand is finished, the rest wait for the next start
        # A stop that hangs says where: every thread's stack goes to stderr (the journal) after 20 s.
        faulthandler.dump_traceback_later(_STOP_REPORT_SECONDS)
        if self.watcher:
            self.watcher.stop()
        self._shutdown_scheduler()
        faulthandler.cancel_dump_traceback_later()
        try:
            records, head = self.relay.store.audit_head()
        except StoreUnavailable:
            records, head = None, None
        self.log.info("daemon.stopped", audit_records=records, audit_head=head)
        return False

    def _stand_down(self) -> bool:
        """The lease is gone: stop polling (the poll in hand fails at its next record or send) and stand by."""
        self.log.warning("daemon.standing_down", node=self.lease.node, epoch=self.lease.epoch)
        self.notifier.send("STATUS=lease lost: stopping work, standing by")
        self.relay.stop_requested = True
        if self.watcher:
            self.watcher.stop()
        self._shutdown_scheduler()
        self.lease.release()
        self.role = "standby"
        return True

    def _reschedule(self, seconds: float = 0) -> None:
        """Move the next poll to `seconds` from now, unless the scheduler is being stopped."""
        with self._schedule_lock:
            if not self._stopping:
                self.scheduler.modify_job("poll", next_run_time=datetime.now(timezone.utc) + timedelta(seconds=seconds))

    def _shutdown_scheduler(self) -> None:
        """Stop the polls, waiting for the one in hand (see _schedule_lock)."""
        with self._schedule_lock:
            self._stopping = True
        self.scheduler.shutdown(wait=True)

    def alive(self) -> bool:
        """Whether the watchdog may be told all is well: the scheduler runs, and a poll under way has
        handled a mail within the watchdog time. A poll stuck without progress lets systemd restart us."""
        if not self.scheduler.running or self.scheduler.get_job("poll") is None:
            return False
        limit = self.notifier.watchdog_seconds or float("inf")
        return not self.polling or time.monotonic() - self.last_progress < limit

    def _watchdog(self) -> None:
        if self.alive():
            self.notifier.send("WATCHDOG=1")
        else:
            self.log.error("daemon.stalled", seconds_without_progress=round(time.monotonic() - self.last_progress))

    def _progressed(self) -> None:
        self.last_progress = time.monotonic()

    def wake(self, reason: str) -> None:
        """Poll now (new mail announced); if a poll is running, once more right after it."""
        with self._wake_lock:
            if self.polling:
                self.again = True
            else:
                self.log.debug("poll.woken", reason=reason)
                self._reschedule()

    def poll(self) -> None:
        with self._wake_lock:
            self.polling, self.again = True, False
        self._progressed()
        try:
            self._poll()
        finally:
            with self._wake_lock:
                self.polling = False
                if self.again and self.failures == 0:
                    self._reschedule()
            self._progressed()

    def _poll(self) -> None:
        began = time.monotonic()
        try:
            report = self.relay.poll()
        except LeaseLost as error:  # another node acts now: this one does nothing more
            self.log.error("poll.fenced", error=str(error))
            self.signals.put(_LEASE_LOST)
            return
        except (SourceError, StoreUnavailable) as error:
            self._observed("failed", began)
            self.failures += 1
            wait = min(self.poll_seconds * 2 ** min(self.failures - 1, 16), max(self.poll_seconds, _MAX_BACKOFF))
            self.log.error("poll.failed", error=str(error), failures=self.failures, next_poll_in=wait)
            # Back off while the server is away, so a long outage is not a connection attempt a second.
            self._reschedule(wait)
            self.notifier.send("WATCHDOG=1", f"STATUS=poll failed at {_clock()} ({error}); next try in {wait:.0f} s")
            return
        except Exception as error:  # the next poll starts afresh; the traceback goes to the log
            self._observed("crashed", began)
            self.log.exception("poll.crashed")
            self.notifier.send(f"STATUS=poll crashed at {_clock()}: {type(error).__name__}")
            return
        self._observed("ok", began, report.mails)
        if self.failures:
            self.log.info("poll.recovered", after_failures=self.failures)
        self.failures = 0
        waiting = self.relay.store.mail_counts(datetime.now(timezone.utc).isoformat())["waiting"]
        self.notifier.send("WATCHDOG=1", f"STATUS=last poll {_clock()}, {report.counts['forwarded']} forwarded, "
                                         f"{waiting} queued")

    def _observed(self, result: str, began: float, mails: list[dict] = ()) -> None:
        """After every poll, whatever its end: the metrics, the status file, a refused change not told yet."""
        if self.metrics:
            self.metrics.observe_poll(result, time.monotonic() - began, list(mails))
        self.publish()
        if result == "ok":
            reloads.tell_alert_desk(self.relay)

    def publish(self) -> None:
        """Write what monitors read (the status file, the metrics' gauges); a failure is logged, never fatal."""
        if not (self.metrics or self.status_path):
            return
        try:
            state = health.facts(self.relay.store)
            if self.lease:
                state = dataclasses.replace(state, node=self.lease.node)
            if self.metrics:
                self.metrics.refresh(state, self.relay.store.audit_head()[0])
            if self.status_path:
                statusfile.write(self.status_path, state)
        except Exception as error:  # a full /run or a bug here must not stop the polls
            self.log.error("status.publish_failed", error=f"{type(error).__name__}: {error}",
                           status_file=str(self.status_path))

    def purge(self) -> None:
        try:
            self.relay.purge()
        except Exception:  # tried again tomorrow; the traceback goes to the log
            self.log.exception("raw.purge_failed")

    def reload(self) -> bool:
        """Swap in freshly loaded rules, signals and templates; on any problem keep the old ones, keep the
        refusal for `status` and tell the alert desk once (in the poll worker, after the poll in hand)."""
        try:
            version = self.policy.reload().version
        except ConfigError as error:
            problems = [str(p) for p in error.problems]
            refusal, new = reloads.refused(self.relay.store, error.problems, self.policy().version)
            self.log.error("config.reload_refused", problems=problems, rules_version=self.policy().version,
                           refused_at=refusal.at, new_change=new)
            self.relay.store.event(None, "config.reload_refused", {"problems": problems, "new_change": new})
            self._in_worker(self._refused_told)
            return False
        reloads.in_force(self.relay.store, version)
        self.log.info("config.reloaded", rules_version=version)
        self.relay.store.event(None, "config.reloaded", {"rules_version": version})
        self._in_worker(self.publish)
        return True

    def _refused_told(self) -> None:
        self.publish()
        reloads.tell_alert_desk(self.relay)

    def _in_worker(self, job: Callable[[], None]) -> None:
        """Run `job` in the one poll worker, so it never sends or writes beside a poll."""
        if self.scheduler.running:  # however long the poll in hand takes: never dropped as "missed"
            self.scheduler.add_job(job, misfire_grace_time=None)
        else:
            job()


def _scheduler() -> BackgroundScheduler:
    """One worker: polls (and the daily purge) run one after another, never side by side."""
    return BackgroundScheduler(executors={"default": {"type": "threadpool", "max_workers": 1}})


def _clock() -> str:
    return datetime.now().strftime("%H:%M")
