"""`mailrelay quarantine ...` and `mailrelay review ...`: the editors' two queues."""
from __future__ import annotations


def add_queue_commands(commands) -> None:
    """Add the quarantine and review commands to the top-level parser."""
