"""Backlog throughput, poll cost and memory, each on fresh users of the same Dovecot; each returns its table rows.

The IDLE latency lives in bench/latency.py; the shared Row, Sizes and Bench are here."""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from bench import inbox
from bench.mails import Sample, backlog, forwardable, large_mail
from bench.relayrun import OnceRun, relay_config, run_once
from tests.postgres import Postgres
from tests.servers import Dovecot, SmtpSink

FLOOR = Path(__file__).with_name("floor.py")
MB = 1024  # kB per MiB, as ru_maxrss and /proc count


@dataclass(frozen=True)
class Row:
    """One line of the final table; `ok` None means the figure has no target."""

    figure: str
    value: str
    reference: str
    ok: bool | None = None


@dataclass(frozen=True)
class Sizes:
    """How much each measurement does; --quick shrinks them."""

    mails: int = 2000
    handled: int = 20_000
    probes: int = 100
    polls: int = 10
    large: int = 10
    large_bytes: int = 20_000_000
    help_runs: int = 5
    store_mails: int = 1000  # per store, in two rounds of half
    kills: int = 20
    profile: Path | None = None  # the backlog's `once` under cProfile, its statistics written here


@dataclass
class Bench:
    """What every measurement needs: the server, the sample, a scratch folder, the sizes, a progress line;
    the PostgreSQL server when a chosen measurement needs one."""

    dovecot: Dovecot
    samples: list[Sample]
    workdir: Path
    sizes: Sizes
    say: Callable[[str], None]
    postgres: Postgres | None = None

    def directory(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path


# ----------------------------------------------------------------------------- 1. backlog throughput


def backlog_throughput(bench: Bench) -> list[Row]:
    """N mails relayed by one `once`, against the floor over the same mails, servers and sink; and the floor
    again with one move per mail, the round trip a relay archiving mail by mail pays."""
    count = bench.sizes.mails
    mails = list(backlog(bench.samples, count, tag="b"))
    users = {name: inbox.fresh_user(name) for name in ("relay", "floor", "floor-each")}
    for user in users.values():
        appended, size = inbox.fill(bench.dovecot, user, mails)
    bench.say(f"backlog: {appended} mails ({size / 1e6:.0f} MB) appended for the relay and for each floor")
    with SmtpSink() as sink:
        run = run_once(relay_config(bench.directory("backlog"), bench.dovecot, users["relay"], sink),
                       profile=bench.sizes.profile)
        relay_received = len(sink.received)
        bench.say(f"backlog: relay {run.wall:.1f} s, {run.counts}, sink got {relay_received}")
        if bench.sizes.profile is not None:
            _print_profile(bench.sizes.profile)
        floor = _run_floor(bench, users["floor"], sink)
        floor_received = len(sink.received) - relay_received
        bench.say(f"backlog: floor {floor['wall']:.1f} s, sink got {floor_received}")
        each = _run_floor(bench, users["floor-each"], sink, "--move-each")
        bench.say(f"backlog: floor with a move per mail {each['wall']:.1f} s")
    left = inbox.count(bench.dovecot, users["relay"], "INBOX")
    return _backlog_rows(count, run, floor, relay_received, floor_received, left) + [
        Row("backlog: floor, one move per mail", f"{each['mails'] / each['wall']:.1f} mails/s ({each['wall']:.1f} s)",
            f"relay / this {count / run.wall / (each['mails'] / each['wall']):.2f}")]


def _print_profile(path: Path, lines: int = 30) -> None:
    """The profile's top lines on stderr: by own time, and by time including callees."""
    import pstats
    for order in ("tottime", "cumulative"):
        pstats.Stats(str(path), stream=sys.stderr).strip_dirs().sort_stats(order).print_stats(lines)


def _run_floor(bench: Bench, user: str, sink: SmtpSink, *options: str) -> dict:
    secret = bench.directory("floor") / "imap.secret"
    secret.write_text(bench.dovecot.password, encoding="utf-8")
    command = [sys.executable, str(FLOOR), "--port", str(bench.dovecot.tls_port), "--ca-file",
               str(bench.dovecot.ca_file), "--user", user, "--password-file", str(secret),
               "--smtp-port", str(sink.port), "--batch-size", "50", *options]
    began = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - began
    if result.returncode != 0:
        raise RuntimeError(f"the floor failed: {result.stderr.strip().splitlines()[-1:]}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]), wall=wall)


def _backlog_rows(count: int, run: OnceRun, floor: dict, relay_received: int, floor_received: int, left: int) -> list[Row]:
    relay_rate, floor_rate = count / run.wall, floor["mails"] / floor["wall"]
    ratio = relay_rate / floor_rate
    poll = run.poll_seconds
    outcomes = ", ".join(f"{key} {value}" for key, value in sorted(run.counts.items()))
    handled = sum(value for value in run.counts.values() if isinstance(value, int))
    sound = run.returncode == 0 and handled == count and left == 0 and floor_received == count \
        and relay_received >= run.counts.get("forwarded", 0)
    return [
        Row(f"backlog {count}: relay `once`", f"{relay_rate:.1f} mails/s ({run.wall:.1f} s wall"
            + (f", poll {poll:.1f} s)" if poll else ")"), f"floor {floor_rate:.1f} mails/s ({floor['wall']:.1f} s)"),
        Row("backlog: relay / floor", f"{ratio:.2f}", ">= 0.35", ratio >= 0.35),
        Row("backlog: SMTP sink received", f"relay {relay_received} ({outcomes}; inbox left {left})",
            f"floor {floor_received} of {count}", sound),
    ]


# ----------------------------------------------------------------------------- 3. poll cost


def poll_cost(bench: Bench) -> list[Row]:
    """A poll on an idle mailbox that is empty, against one holding many handled (flagged) mails."""
    with SmtpSink() as sink:
        empty = _idle_polls(bench, sink, "empty", 0)
        full = _idle_polls(bench, sink, "handled", bench.sizes.handled)
    ratio = statistics.median(full["polls"]) / statistics.median(empty["polls"])
    first = full["first"]
    return [
        Row("poll, empty mailbox", _poll_value(empty), f"floor {_ms(empty['floor'])} (connect, login, SELECT, "
            "SEARCH, logout)"),
        Row(f"poll, {bench.sizes.handled} handled mails", _poll_value(full), f"floor {_ms(full['floor'])}"),
        Row("poll cost: handled / empty", f"{ratio:.2f}x", f"<= 1.5x; floor {full['floor'] / empty['floor']:.2f}x",
            ratio <= 1.5),
        Row(f"handling the {bench.sizes.handled} (one `once`)",
            f"{first.wall:.0f} s, {bench.sizes.handled / first.wall:.1f} mails/s", _outcomes(first),
            first.returncode == 0),
    ]


def _idle_polls(bench: Bench, sink: SmtpSink, name: str, handled: int) -> dict:
    user = inbox.fresh_user(name)
    if handled:
        appended, size = inbox.fill(bench.dovecot, user, backlog(bench.samples, handled, tag="h", pdf_every=0))
        bench.say(f"poll: {appended} mails ({size / 1e6:.0f} MB) appended; relaying them with one `once`")
    config = relay_config(bench.directory(f"poll-{name}"), bench.dovecot, user, sink, archive="flag")
    first = run_once(config)  # handles the mails; on the empty mailbox it creates the folders
    bench.say(f"poll: {name}: first `once` {first.wall:.1f} s, {first.counts}")
    runs: list[OnceRun] = []
    floors: list[float] = []
    for _ in range(bench.sizes.polls):  # alternately, so both see the mailbox in the same state
        runs.append(run_once(config))
        floors.append(inbox.bare_poll_seconds(bench.dovecot, user))
    polls = [run.poll_seconds for run in runs if run.poll_seconds is not None]
    bench.say(f"poll: {name}: polls {', '.join(f'{value * 1000:.0f}' for value in polls)} ms; "
              f"bare poll {statistics.median(floors) * 1000:.0f} ms")
    return {"first": first, "polls": polls or [float("nan")], "walls": [run.wall for run in runs],
            "busy": [run.counts for run in runs if any(run.counts.values())], "floor": statistics.median(floors)}


def _poll_value(result: dict) -> str:
    busy = f"; {len(result['busy'])} runs did work!" if result["busy"] else ""
    return (f"{statistics.median(result['polls']) * 1000:.0f} ms, median of {len(result['polls'])} "
            f"(process {statistics.median(result['walls']):.2f} s{busy})")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _outcomes(run: OnceRun) -> str:
    return ", ".join(f"{key} {value}" for key, value in sorted(run.counts.items())) or f"exit {run.returncode}"


# ----------------------------------------------------------------------------- 4. memory and start-up


def memory(bench: Bench) -> list[Row]:
    """Peak RSS of one `once` over a backlog with large mails; the wall time of `mailrelay --help`."""
    sizes = bench.sizes
    user = inbox.fresh_user("memory")
    appended, size = inbox.fill(bench.dovecot, user, _with_large(bench.samples, sizes.large, sizes.large_bytes))
    bench.say(f"memory: {appended} mails ({size / 1e6:.0f} MB) appended")
    with SmtpSink() as sink:
        run = run_once(relay_config(bench.directory("memory"), bench.dovecot, user, sink), measure_rss=True)
        large = sum(1 for envelope in sink.received if len(envelope.data) > sizes.large_bytes * 0.9)
    peak = (run.max_rss_kb or 0) / MB
    bench.say(f"memory: peak {peak:.0f} MB, {run.counts}, {large} large forwards")
    help_wall = statistics.median(_help_wall(bench.workdir) for _ in range(sizes.help_runs))
    return [
        Row(f"peak RSS, `once` over {sizes.large}x{sizes.large_bytes // 1_000_000} MB + {appended - sizes.large}"
            " mails", f"{peak:.0f} MB", "< 120 MB", run.max_rss_kb is not None and peak < 120),
        Row("large mails forwarded", f"{large} of {sizes.large}", _outcomes(run), large == sizes.large),
        Row(f"`mailrelay --help` (median of {sizes.help_runs})", f"{help_wall:.2f} s", "< 0.3 s", help_wall < 0.3),
    ]


def _with_large(samples: list[Sample], large: int, large_bytes: int) -> Iterator[bytes]:
    """Ten mails around each large one, the large one fifth: a batch of 50 holds five of them."""
    applications = [sample for sample in forwardable(samples) if sample.kind == "application"]
    normal = backlog(samples, large * 9, tag="m")
    for index in range(large * 10):
        if index % 10 == 4:
            yield large_mail(applications[index // 10], large_bytes, f"big{index}", seed=index)
        else:
            yield next(normal)


def _help_wall(directory: Path) -> float:
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mailrelay", "--help"], cwd=directory, capture_output=True, check=True)
    return time.perf_counter() - began
