"""`mailrelay once` with a hard exit (as from kill -9) injected at one step of the first mail's path.

Usage: python -m tests.crashrun STEP --config FILE once

The store's steps are patched on the class of the store the config names (SQLite or PostgreSQL).
"""
from __future__ import annotations

import functools
import os
import sys
import tomllib
from pathlib import Path

from mailrelay import pipeline, runner
from mailrelay.cli import main
from mailrelay.sources.imap import ImapInbox
from mailrelay.transports.smtp import SmtpSession
from tests.storekinds import store_class

STORE = "store"  # in the tables below: the class of the store in use, see crash_point

CRASH_EXIT = 137


def _crash(owner, name: str, after: bool, when=lambda *args, **kwargs: True) -> None:
    """Replace owner.name so that its first call for which `when` holds exits the process, before or
    after doing its work."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def crashing(*args, **kwargs):
        if not when(*args, **kwargs):
            return original(*args, **kwargs)
        if not after:
            os._exit(CRASH_EXIT)
        result = original(*args, **kwargs)
        os._exit(CRASH_EXIT)
        return result

    setattr(owner, name, crashing)


STEPS = {
    "fetched": (STORE, "add_mail", False),
    "recorded": (STORE, "add_mail", True),
    "parsed": (runner, "parse", True),
    "classified": (pipeline, "classify", True),
    "rendered": (pipeline, "render", True),
    "before-smtp": (SmtpSession, "send", False),
    "after-smtp-accepted": (SmtpSession, "send", True),
    "before-move": (ImapInbox, "archive", False),
    "after-move": (ImapInbox, "archive", True),
}


def _to_applicant(session, forward) -> bool:
    return forward.desk == "applicant"


# The steps of an acknowledgement's path: queued with the forward's record, then sent.
ACK_STEPS = {
    "ack-queued": (STORE, "update", True, lambda *args, **kwargs: kwargs.get("ack") is not None),
    "ack-before-smtp": (SmtpSession, "send", False, _to_applicant),
    "ack-after-smtp-accepted": (SmtpSession, "send", True, _to_applicant),
    "ack-before-record": (STORE, "ack_result", False),
}


def config_store_class(config: Path) -> type:
    """The class of the store a main config names: PostgresStore for [state] url, else SqliteStore."""
    with open(config, "rb") as file:
        state = tomllib.load(file).get("state", {})
    return store_class(state.get("url") or Path(state.get("path", "mailrelay.sqlite")))


def crash_point(step: str, config: Path) -> tuple:
    """A step's (owner, name, after[, when]), a store's step on the class of the store `config` names."""
    owner, *rest = {**STEPS, **ACK_STEPS}[step]
    return (config_store_class(config) if owner == STORE else owner, *rest)


if __name__ == "__main__":
    _crash(*crash_point(sys.argv[1], Path(sys.argv[sys.argv.index("--config") + 1])))
    sys.exit(main(sys.argv[2:]))
