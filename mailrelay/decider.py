"""Deciding ahead: a second process parses, classifies, routes and renders the next mail while the relay's
own process sends, records and moves the one before.

The pure stages are most of a mail's cost, and the machine has more than one core. The decider is a child
forked at the second mail of a poll, so it has the policy in force then and nothing to load; it ends with
the poll. Its decisions only ever save time, they never change an outcome: a mail it does not decide
(too large to copy over, a policy reloaded meanwhile, a decision that raised, the child gone) is decided
in the relay's own process as if there were no decider, and from then on every mail of that poll is.
So a mail that kills the process deciding it still ends the relay, and counts its tries, as before.

The order on the pipe is strict: the relay reads the decision of mail k before it sends mail k+1, so
neither side ever waits to write while the other waits to write too.
"""
from __future__ import annotations

import multiprocessing
import signal
from typing import Callable, Iterator

from mailrelay.model import Processed, RawMail

# Larger mails are decided in the relay's process: copied to the child and back they would cost
# memory (a 20 MB mail thrice over) for little time won.
AHEAD_MAX_BYTES = 1_000_000

Decide = Callable[[RawMail], Processed | None]


class Decider:
    """A forked child deciding mails in order: submit one, then take its decision, then submit the next."""

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
        """The decision of the mail submitted first and not taken yet; None when the child made none."""
        try:
            return self._pipe.recv()
        except (OSError, EOFError, ValueError):
            return None

    def close(self) -> None:
        try:
            self._pipe.send(None)
        except (OSError, ValueError):
            pass
        self._pipe.close()
        self._process.join(timeout=2)
        if self._process.is_alive():  # deciding a mail nobody waits for any more
            self._process.kill()
            self._process.join()


def _serve(pipe, relays_end, decide: Decide) -> None:
    """The child: decide every mail sent until None or the end of the pipe; a mail it cannot decide ends it."""
    relays_end.close()  # so the relay's end closing, by its exit or its death, ends the pipe here
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the relay's handlers are for the relay
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the relay's; the child ends with its pipe
    while True:
        try:
            raw = pipe.recv()
        except EOFError:
            return
        if raw is None:
            return
        try:
            decided = decide(raw)
        except BaseException:  # the relay decides it again itself, and meets the same end there
            decided = None
        pipe.send(decided)
        if decided is None:
            return


class Ahead:
    """The poll's mails in order, each with a callable that returns its decision made ahead (or None).

    The callable must be called once for every mail, first thing: it takes that mail's decision from the
    child and hands the child the next mail, whose deciding then overlaps this one's sending."""

    def __init__(self, mails: Iterator[RawMail], decide: Decide, current_policy: Callable[[], object]) -> None:
        self._mails = mails
        self._decide = decide
        self._current_policy = current_policy
        self._policy = current_policy()
        self._decider: Decider | None = None
        self._stopped = False  # the decider failed once: this poll decides in the relay's process
        self._waiting = False  # a mail is with the child

    def __iter__(self) -> Iterator[tuple[RawMail, Callable[[], Processed | None]]]:
        current = next(self._mails, None)
        while current is not None:
            if _small(current):
                following = next(self._mails, None)
                yield current, lambda following=following: self._take(following)
                current = following
            else:  # a large mail is not held while the next is fetched
                yield current, lambda: self._take(None)
                current = None
                current = next(self._mails, None)

    def _take(self, following: RawMail | None) -> Processed | None:
        decided = None
        if self._waiting:
            self._waiting = False
            decided = self._decider.decision()
            if decided is None:
                self._stop()
        if following is not None and self._ahead(following):
            if self._decider is None:
                self._decider = Decider(self._decide)
            self._waiting = self._decider.submit(following)
            if not self._waiting:
                self._stop()
        return decided

    def _ahead(self, raw: RawMail) -> bool:
        if self._stopped or not _small(raw):
            return False
        if self._current_policy() is not self._policy:  # reloaded: the child's is not in force any more
            self._stop()
            return False
        return True

    def _stop(self) -> None:
        self._stopped = True
        self.close()

    def close(self) -> None:
        self._waiting = False
        if self._decider is not None:
            self._decider.close()
            self._decider = None


def _small(raw: RawMail) -> bool:
    return not raw.oversize and len(raw.data) <= AHEAD_MAX_BYTES
