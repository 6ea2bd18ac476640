"""What our own receiving servers said about a mail's sender (RFC 8601 Authentication-Results)."""
from __future__ import annotations

import re

from mailrelay.classify.machine import ServerReport
from mailrelay.model import Inbound

_COMMENT = re.compile(r"\([^()]*\)")
_METHOD_RESULT = re.compile(r"\b(spf|dkim|dmarc)\s*=\s*([a-z]+)", re.IGNORECASE)
FAILED = frozenset({"fail", "softfail", "permerror"})


def failed_checks(inbound: Inbound, authserv_id: str) -> tuple[str, ...]:
    """The checks our servers reported as failed ("dmarc=fail", ...); () when the sender is not shown false.

    Trusted are only Authentication-Results headers carrying our authserv-id that stand above our
    server's own Received line (the first one 'by' that name), or, where there is none, above every
    Received line: below that point the sender wrote the headers, and may have forged them (RFC 8601,
    section 5). A DMARC pass outweighs a failing SPF or DKIM result (forwarders break SPF, lists
    add signatures); a DMARC failure, or SPF or DKIM failing where DMARC was not checked, counts.
    """
    if not authserv_id:
        return ()
    results = [(method.lower(), result.lower()) for value in _trusted(inbound, authserv_id.lower())
               for method, result in _METHOD_RESULT.findall(_COMMENT.sub(" ", value))]
    dmarc = {result for method, result in results if method == "dmarc"}
    if "pass" in dmarc:
        return ()
    relevant = [(m, r) for m, r in results if m == "dmarc"] if dmarc else results
    return tuple(dict.fromkeys(f"{m}={r}" for m, r in relevant if r in FAILED))


def server_report(inbound: Inbound, authserv_id: str) -> ServerReport:
    """The headers our server added (spam verdicts among them) and the checks it reported failed."""
    if not authserv_id:
        return ServerReport()
    return ServerReport(tuple(_ours(inbound, authserv_id.lower())), failed_checks(inbound, authserv_id))


def _ours(inbound: Inbound, authserv_id: str) -> list[tuple[str, str]]:
    """The headers above our server's own Received line (or, without one, above every Received line)."""
    headers = inbound.headers
    ours = next((i for i, (name, value) in enumerate(headers)
                 if name == "received" and re.search(rf"\bby\s+{re.escape(authserv_id)}\b", value, re.I)), None)
    first_received = next((i for i, (name, _) in enumerate(headers) if name == "received"), len(headers))
    return list(headers[:ours if ours is not None else first_received])


def _trusted(inbound: Inbound, authserv_id: str) -> list[str]:
    return [value for name, value in _ours(inbound, authserv_id)
            if name == "authentication-results" and _authserv_id(value) == authserv_id]


def _authserv_id(value: str) -> str:
    """The authserv-id of a header value: its first word, comments removed, without a version number."""
    words = _COMMENT.sub(" ", value).split(";", 1)[0].split()
    return words[0].lower() if words else ""
