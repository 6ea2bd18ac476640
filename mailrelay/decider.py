"""Deciding ahead: a second process parses, classifies, routes and renders the next mail while the relay's
own process sends, records and moves the one before.

The pure stages are most of a mail's cost, and the machine has more than one core. The decider is a child
forked at the second mail of a poll, so it has the policy in force then and nothing to load; it ends with
the poll. Its decisions only ever save time, they never change an outcome: a mail it does not decide
(too large to copy over, a policy reloaded meanwhile, a decision that raised, the child gone) is decided
in the relay's own process as if there were no decider, and from then on every mail of that poll is.
So a mail that kills the process deciding it still ends the relay, and counts its tries, as before.

The child reads what is submitted in a thread of its own, so the relay never waits to write while the
child waits to write its decisions: the relay keeps it a few mails ahead.
"""
from __future__ import annotations

import multiprocessing
import queue
import signal
import sys
import threading
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterator

from mailrelay.model import Processed, RawMail

# Larger mails are decided in the relay's process: copied to the child and back they would cost
# memory (a 20 MB mail thrice over) for little time won.
AHEAD_MAX_BYTES = 1_000_000
# A decision takes milliseconds; a child that gives none for this long is ended and the mail decided here.
DECISION_SECONDS = 30.0

Decide = Callable[[RawMail], Processed | None]


class Decider:
    """A forked child deciding the mails submitted to it, in order. Its own thread reads what is submitted
    as it comes, so the relay never waits to submit, and the decisions wait in the pipe to be taken."""

    def __init__(self, decide: Decide) -> None:
        context = multiprocessing.get_context("fork")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, self._pipe, decide), name="mailrelay-decider",
                                        daemon=True)
        self._process.start()
        child.close()

    def submit(self, raw: RawMail) -> bool:
        try:
            self._pipe.send(raw)
            return True
        except (OSError, EOFError, ValueError):  # the child is gone
            return False

    def decision(self) -> Processed | None:
        """The decision of the mail submitted first and not taken yet; None when the child made none, or
        none within DECISION_SECONDS (a child stuck is as good as gone: the relay decides the mail itself)."""
        try:
            if not self._pipe.poll(DECISION_SECONDS):
                return None
            return self._pipe.recv()
        except (OSError, EOFError, ValueError):
            return None

    def close(self) -> None:
        """End the child: its pipe closes, so it stops at its next read or write."""
        self._pipe.close()
        self._process.join(timeout=2)
        if self._process.is_alive():  # still deciding a mail nobody waits for
            self._process.kill()
            self._process.join()


def _serve(pipe, relays_end, decide: Decide) -> None:
    """The child: decide every mail submitted until the pipe ends; a mail it cannot decide ends it."""
    relays_end.close()  # so the relay's end closing, by its exit or its death, ends the pipe here
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the relay's handlers are for the relay
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the relay's; the child ends with its pipe
    # The reader waits for the deciding thread to let go of the interpreter; by default up to 5 ms, while
    # the relay waits to finish writing a mail.
    sys.setswitchinterval(0.0005)
    submitted: queue.SimpleQueue = queue.SimpleQueue()
    threading.Thread(target=_read, args=(pipe, submitted), daemon=True).start()
    while (raw := submitted.get()) is not None:
        try:
            decided = decide(raw)
        except BaseException:  # the relay decides it again itself, and meets the same end there
            decided = None
        try:
            pipe.send(decided)
        except (OSError, ValueError):  # the relay is gone or done
            return
        if decided is None:
            return


def _read(pipe, submitted: queue.SimpleQueue) -> None:
    try:
        while True:
            submitted.put(pipe.recv())
    except (EOFError, OSError):
        submitted.put(None)


@dataclass
class _Entry:
    raw: RawMail
    submitted: bool = False


class Ahead:
    """The poll's mails in order, each with a callable that returns its decision made ahead (or None).

    The callable must be called once for every mail, first thing: it takes that mail's decision and keeps
    the child supplied with the next mails (up to DEPTH), whose deciding then overlaps this one's
    sending. At most one large mail is held at a time, as without a decider."""

    DEPTH = 4

    def __init__(self, mails: Iterator[RawMail], decide: Decide, current_policy: Callable[[], object]) -> None:
        self._mails = mails
        self._decide = decide
        self._current_policy = current_policy
        self._policy = current_policy()
        self._decider: Decider | None = None
        self._stopped = False  # the decider failed once: this poll decides in the relay's process
        self._queue: deque[_Entry] = deque()  # fetched, not yet handled
        self._current: _Entry | None = None
        self._failed: Exception | None = None  # the fetch's error, raised once the mails before it are handled

    def __iter__(self) -> Iterator[tuple[RawMail, Callable[[], Processed | None]]]:
        while self._queue or self._pull():
            self._current = self._queue.popleft()
            yield self._current.raw, self._take
            self._current = None  # not held while the next (maybe large) mail is fetched
        if self._failed is not None:  # raised where fetching mail by mail would have met it
            raise self._failed

    def _take(self) -> Processed | None:
        decided = None
        if self._current.submitted and self._current_policy() is not self._policy:
            self._stop()  # reloaded since: this mail is decided by the rules now in force
        if self._current.submitted:
            decided = self._decider.decision()
            if decided is None:
                self._stop()
        if _small(self._current.raw):
            while len(self._queue) < self.DEPTH and (not self._queue or _small(self._queue[-1].raw)) \
                    and self._pull():
                pass
        return decided

    def _pull(self) -> bool:
        """Fetch the next mail into the queue, and hand it to the child if it goes there; False at the end.
        A fetch that fails (the server gone) is kept until the mails fetched before it are handled."""
        if self._failed is not None:
            return False
        try:
            raw = next(self._mails, None)
        except Exception as error:
            self._failed = error
            return False
        if raw is None:
            return False
        entry = _Entry(raw)
        if self._ahead(raw):
            if self._decider is None:
                self._decider = Decider(self._decide)
            entry.submitted = self._decider.submit(raw)
            if not entry.submitted:
                self._stop()
        self._queue.append(entry)
        return True

    def _ahead(self, raw: RawMail) -> bool:
        if self._stopped or not _small(raw) or self._current is None:
            return False
        if self._current_policy() is not self._policy:  # reloaded: the child's is not in force any more
            self._stop()
            return False
        return True

    def _stop(self) -> None:
        self._stopped = True
        self.close()

    def close(self) -> None:
        for entry in (*self._queue, *([self._current] if self._current else [])):
            entry.submitted = False  # decided by the relay's process, if at all
        if self._decider is not None:
            self._decider.close()
            self._decider = None


def _small(raw: RawMail) -> bool:
    return not raw.oversize and len(raw.data) <= AHEAD_MAX_BYTES
