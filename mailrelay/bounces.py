"""The recipients a bounce reports as failing: flufl.bounce's detectors, in its order, shown the mail
without the bodies of its base64 attachments, and the two costly heuristic ones started only where one of
their patterns can start.

Most detectors read every line of every part as it stands, undecoded; on a mail with a PDF attached that
is tens of milliseconds, nearly all of it spent on base64 lines, where no phrase of a bounce can be but by
chance. So the detectors see the mail with the base64 bodies of its parts other than text left empty (a
base64 text part they decode themselves stays). SimpleMatch and SimpleWarning run some fifty pattern sets
each; a set finds an address only after its start pattern has matched a line, so a set whose start occurs
nowhere in the readable parts is left out. `tests/test_bounces.py` holds the result to the library's own
on the sample, the demo and the real corpus.
"""
from __future__ import annotations

import copy
import re
from email.message import Message

from flufl.bounce import all_failures

try:  # the library's list, in the order it runs them (most specific first), and the two heuristic
    # detectors: not part of its public API, so another layout falls back to the library's own scan
    from flufl.bounce._detectors.simplematch import SimpleMatch
    from flufl.bounce._detectors.simplewarning import SimpleWarning
    from flufl.bounce._scan import _DETECTORS
except ImportError:  # pragma: no cover - another version of flufl.bounce
    SimpleMatch = SimpleWarning = object
    _DETECTORS = None

Failures = tuple[frozenset, frozenset]


def _start_patterns(patterns: list) -> list[re.Pattern]:
    """Each set's start pattern, made to match at any line's start or end within a whole text."""
    return [re.compile(start.pattern, start.flags | re.MULTILINE) for start, _end, _address in patterns]


class _Gated:
    """A SimpleMatch kind of detector that runs only the pattern sets whose start occurs in `readable`."""

    STARTS: list[re.Pattern] = []

    def __init__(self, readable: str) -> None:
        kept = [patterns for patterns, start in zip(self.PATTERNS, self.STARTS) if start.search(readable)]
        self.PATTERNS = kept

    def process(self, msg: Message) -> Failures:
        if not self.PATTERNS:
            return frozenset(), frozenset()
        return super().process(msg)


class _GatedMatch(_Gated, SimpleMatch):
    STARTS = _start_patterns(getattr(SimpleMatch, "PATTERNS", []))


class _GatedWarning(_Gated, SimpleWarning):
    STARTS = _start_patterns(getattr(SimpleWarning, "PATTERNS", []))


_GATED = {SimpleMatch: _GatedMatch, SimpleWarning: _GatedWarning}


def failures(message: Message) -> Failures:
    """(temporary, permanent) failing recipients as flufl.bounce's all_failures reports them: the first
    detector that finds any decides."""
    if _DETECTORS is None:
        return all_failures(message)
    message = _without_attachment_bodies(message)
    readable = _readable(message)
    for detector in _DETECTORS:
        gated = _GATED.get(detector)
        temporary, permanent = (gated(readable) if gated else detector()).process(message)
        if temporary or permanent:
            return frozenset(temporary), frozenset(permanent)
    return frozenset(), frozenset()


def _without_attachment_bodies(part: Message) -> Message:
    """The mail as it is, but for the parts other than text encoded in base64, which are shallow copies
    with an empty body (the mail itself is not changed)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        parts = [_without_attachment_bodies(child) for child in payload]
        if all(new is old for new, old in zip(parts, payload)):
            return part
        view = copy.copy(part)
        view.set_payload(parts)
        return view
    if part.get_content_maintype() == "text" or \
            str(part.get("Content-Transfer-Encoding", "")).strip().lower() != "base64":
        return part
    view = copy.copy(part)
    view.set_payload("")
    return view


def _readable(message: Message) -> str:
    """The text of every part as the detectors read it (undecoded), base64 bodies left out."""
    texts = []
    for part in message.walk():
        payload = part.get_payload()
        if isinstance(payload, str) and str(part.get("Content-Transfer-Encoding", "")).strip().lower() != "base64":
            texts.append(payload)
    return "\n".join(texts)
