"""What our own receiving server said about a mail's sender (RFC 8601 Authentication-Results)."""
from __future__ import annotations

import re

from mailrelay.model import Inbound

_METHOD_RESULT = re.compile(r"\b(spf|dkim|dmarc)\s*=\s*([a-z]+)", re.IGNORECASE)
FAILED = frozenset({"fail", "softfail", "permerror"})


def failed_checks(inbound: Inbound, authserv_id: str) -> tuple[str, ...]:
    """The checks our server reported as failed ("spf=fail", ...); () when none failed or nothing is trusted.

    Only the topmost Authentication-Results header is read, and only if it carries our
    authserv-id: our server adds it above everything the sender wrote, so a header lower
    down, or from another server, may be forged and is ignored (RFC 8601, section 5).
    """
    if not authserv_id:
        return ()
    values = inbound.header_values("authentication-results")
    if not values:
        return ()
    topmost = values[0]
    if topmost.split(";", 1)[0].strip().split()[0:1] != [authserv_id]:
        return ()
    return tuple(f"{method.lower()}={result.lower()}" for method, result in _METHOD_RESULT.findall(topmost)
                 if result.lower() in FAILED)
