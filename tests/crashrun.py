"""`mailrelay once` with a hard exit (as from kill -9) injected at one step of the first mail's path.

Usage: python -m tests.crashrun STEP --config FILE once
"""
from __future__ import annotations

import functools
import os
import sys

from mailrelay import pipeline, runner
from mailrelay.cli import main
from mailrelay.sources.imap import ImapInbox
from mailrelay.state.sqlite import SqliteStore as Store
from mailrelay.transports.smtp import SmtpSession

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
    "fetched": (Store, "add_mail", False),
    "recorded": (Store, "add_mail", True),
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
    "ack-queued": (Store, "update", True, lambda *args, **kwargs: kwargs.get("ack") is not None),
    "ack-before-smtp": (SmtpSession, "send", False, _to_applicant),
    "ack-after-smtp-accepted": (SmtpSession, "send", True, _to_applicant),
    "ack-before-record": (Store, "ack_result", False),
}

if __name__ == "__main__":
    _crash(*{**STEPS, **ACK_STEPS}[sys.argv[1]])
    sys.exit(main(sys.argv[2:]))
