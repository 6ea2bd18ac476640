"""Push latency: the daemon with IMAP IDLE, one mail appended at a time, until its forward reaches the sink."""
from __future__ import annotations

import itertools
import math
import statistics
import time
from dataclasses import dataclass
from datetime import datetime

from bench import inbox
from bench.idlefloor import exists_latency
from bench.mails import forwardable, message_id, unique
from bench.phases import MB, Bench, Row
from bench.relayrun import Daemon, relay_config
from tests.servers import SmtpSink

PROBE_TIMEOUT = 30.0  # seconds one IDLE probe may take before it counts as missed
# Dovecot batches mailbox changes for 0.5 s before it tells an idling client; a probe appended while the
# relay's MOVE of the previous one is still being announced would ride on that timer and look faster.
PROBE_GAP = 1.0


def idle_latency(bench: Bench) -> list[Row]:
    """The daemon with IDLE: APPEND one mail, time until the sink has its forward; then the next."""
    user = inbox.fresh_user("idle")
    probes = [unique(sample.data, f"l{index}") for index, sample in
              zip(range(bench.sizes.probes), itertools.cycle(forwardable(bench.samples)))]
    with SmtpSink() as sink:
        config = relay_config(bench.directory("idle"), bench.dovecot, user, sink, idle=True, poll_seconds=600)
        with Daemon(config) as daemon:
            ready = daemon.log.wait_count("idle.started", 1, 60) and daemon.log.wait_count("poll.finished", 1, 60)
            time.sleep(3)  # let the poll the IDLE connection asked for end, and the process settle
            settled = daemon.memory_kb()
            bench.say(f"idle: daemon ready={ready}, RSS {settled.get('VmRSS', 0) / MB:.1f} MB; probing")
            done = _probe(bench, user, sink, daemon, probes) if ready else []
            after = daemon.memory_kb()
            began = time.perf_counter()
            code = daemon.stop()
            stopped = time.perf_counter() - began
    floor = exists_latency(bench.dovecot, inbox.fresh_user("idle-floor"), probes, PROBE_TIMEOUT)
    bench.say(f"idle: floor (EXISTS heard) median {statistics.median(_arrived(floor) or [0]) * 1000:.0f} ms")
    latencies = [probe.latency for probe in done]
    return (_latency_rows(latencies, floor) + [_breakdown(daemon.log.events, done)]
            + _daemon_rows(settled, after, code, stopped))


def _probe(bench: Bench, user: str, sink: SmtpSink, daemon: Daemon, probes: list[bytes]) -> list[Probe]:
    done: list[Probe] = []
    with bench.dovecot.client(user) as client:
        for mail in probes:
            finished = daemon.log.count("poll.finished")
            appended, began = time.time(), time.perf_counter()
            client.append("INBOX", mail)
            arrived = _wait_forward(sink, message_id(mail), PROBE_TIMEOUT)
            done.append(Probe(appended, time.perf_counter() - began if arrived else None))
            daemon.log.wait_count("poll.finished", finished + 1, PROBE_TIMEOUT)  # the relay idle again
            time.sleep(PROBE_GAP)
    return done


@dataclass(frozen=True)
class Probe:
    """One IDLE probe: when its APPEND began (epoch seconds) and how long until its forward arrived."""

    appended: float
    latency: float | None


# Where a probe's time goes, by the first of these log events after its APPEND.
_STEPS = (("poll.started", "wake"), ("mail.received", "connect+fetch"), ("mail.sending", "decide"))


def _breakdown(events: list[dict], probes: list[Probe]) -> Row:
    """Median time from the APPEND to each step, then from the last step to the sink."""
    stamps = sorted((datetime.fromisoformat(event["timestamp"]).timestamp(), event["event"]) for event in events)
    parts: dict[str, list[float]] = {label: [] for _, label in _STEPS + (("", "send"),)}
    for probe in (probe for probe in probes if probe.latency is not None):
        previous = probe.appended
        for name, label in _STEPS:
            moment = next((at for at, event in stamps if event == name and at >= previous), previous)
            parts[label].append(moment - previous)
            previous = moment
        parts["send"].append(probe.appended + probe.latency - previous)
    text = ", ".join(f"{label} {statistics.median(values) * 1000:.0f}" for label, values in parts.items() if values)
    return Row("IDLE latency, median by step", f"{text} ms", "APPEND -> poll.started -> mail.received -> "
               "mail.sending -> sink")


def _wait_forward(sink: SmtpSink, original_id: bytes, timeout: float) -> bool:
    """Whether a forward carrying the original with `original_id` reached the sink within `timeout`."""
    deadline = time.monotonic() + timeout
    seen = 0
    while True:
        received = sink.received
        if any(original_id in envelope.data for envelope in received[seen:]):
            return True
        seen = len(received)
        left = deadline - time.monotonic()
        try:
            sink.wait_for(seen + 1, timeout=max(left, 0))
        except TimeoutError:
            return False


def _latency_rows(latencies: list[float | None], floor: list[float | None]) -> list[Row]:
    arrived, heard, sent = _arrived(latencies), _arrived(floor), len(latencies)
    if not arrived or not heard:
        return [Row("IDLE latency", f"{len(arrived)} forwards arrived, floor heard {len(heard)}",
                    f"{sent} probes", False)]
    p95 = _nearest_rank(arrived, 0.95) if len(arrived) == sent else float("inf")
    return [
        Row(f"IDLE latency p50 ({sent} mails)", _ms(statistics.median(arrived)),
            f"floor {_ms(statistics.median(heard))} (APPEND -> EXISTS at a bare IDLE client)"),
        Row("IDLE latency p95", _ms(p95), f"< 1000 ms; floor {_ms(_nearest_rank(heard, 0.95))}", p95 < 1.0),
        Row("IDLE latency max", _ms(arrived[-1]), f"missed {sent - len(arrived)} of {sent}; floor max "
            f"{_ms(heard[-1])}", len(arrived) == sent),
    ]


def _arrived(latencies: list[float | None]) -> list[float]:
    return sorted(value for value in latencies if value is not None)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _daemon_rows(settled: dict[str, int], after: dict[str, int], code: int | None, stopped: float) -> list[Row]:
    rss = settled.get("VmRSS", 0) / MB
    return [
        Row("daemon RSS, settled after first poll (IDLE on)", f"{rss:.1f} MB", "< 60 MB", rss < 60),
        Row("daemon RSS after the probes", f"{after.get('VmRSS', 0) / MB:.1f} MB",
            f"peak (VmHWM) {after.get('VmHWM', 0) / MB:.1f} MB"),
        Row("daemon stop on SIGTERM", f"exit {code} in {stopped:.1f} s", "", code == 0),
    ]


def _nearest_rank(ordered: list[float], fraction: float) -> float:
    """The nearest-rank percentile of an ordered, non-empty list."""
    return ordered[max(0, math.ceil(len(ordered) * fraction) - 1)]
