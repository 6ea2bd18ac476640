"""The relay's benchmark: `python3 bench/run.py [--mails 2000] [--quick]` from the repository root.

Starts a private Dovecot and an SMTP sink on loopback (and a private PostgreSQL for the shared state),
measures backlog throughput against a protocol floor, IDLE latency, poll cost on a large handled mailbox,
peak memory and start-up time, backlog throughput by state store and the take-over time of two nodes, and
prints one table. It measures and prints; it asserts nothing and is no test.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python3 bench/run.py` puts bench/, not the repository, on the path
    sys.path.insert(0, str(REPO))

from bench import latency, phases, stores, takeover  # noqa: E402  (needs the path above)
from bench.mails import DEFAULT_CORPUS, load_corpus  # noqa: E402
from tests.postgres import Postgres, postgres_bin  # noqa: E402
from tests.servers import Dovecot, dovecot_binary, make_tls_material  # noqa: E402

QUICK = phases.Sizes(mails=200, handled=2000, probes=20, polls=5, large=3, store_mails=200, kills=10)
MEASUREMENTS: dict[str, Callable[[phases.Bench], list[phases.Row]]] = {
    "backlog": phases.backlog_throughput,
    "idle": latency.idle_latency,
    "poll": phases.poll_cost,
    "memory": phases.memory,
    "store": stores.store_throughput,
    "takeover": takeover.takeover,
}
ON_POSTGRES = {"store", "takeover"}  # the measurements that need the private PostgreSQL


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    if dovecot_binary() is None:
        print("bench: dovecot is not installed (apt-get install dovecot-imapd)", file=sys.stderr)
        return 1
    _stop_on_sigterm()
    began, revision, load = time.monotonic(), _revision(), os.getloadavg()[0]
    rows = _measure(arguments, _sizes(arguments), lambda text: _say(began, text))
    print(_table(rows))
    print()
    print(_machine(time.monotonic() - began))
    print(f"relay:    {revision}; load average {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")
    return 0


def _stop_on_sigterm() -> None:
    """`timeout` and service managers send SIGTERM: leave through the context managers, as Ctrl-C does,
    so Dovecot is stopped and the temporary folders are removed."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Benchmark mailrelay against its protocol floor.")
    parser.add_argument("--mails", type=int, help="backlog size (default 2000; 200 with --quick)")
    parser.add_argument("--handled", type=int, help="handled mails for the poll cost (default 20000; 2000 with --quick)")
    parser.add_argument("--store-mails", type=int, help="backlog per state store (default 1000; 200 with --quick)")
    parser.add_argument("--kills", type=int, help="kills of the active node (default 20; 10 with --quick)")
    parser.add_argument("--quick", action="store_true", help="a smoke run with small numbers")
    parser.add_argument("--only", type=_names, action="append", metavar="NAME[,NAME...]",
                        help=f"run only these measurements, of {', '.join(MEASUREMENTS)} (repeatable)")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="labelled sample to cycle through")
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="run the backlog's `once` under cProfile, write its statistics to FILE and print "
                             "the top lines on stderr (the backlog figures then include the profiler's cost)")
    return parser


def _names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in MEASUREMENTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"not a measurement: {', '.join(unknown) or repr(text)} "
                                         f"(choose from {', '.join(MEASUREMENTS)})")
    return names


def _chosen(arguments: argparse.Namespace) -> list[str]:
    """The measurements to run, in the order given, each once; all of them without --only."""
    given = [name for names in arguments.only or [list(MEASUREMENTS)] for name in names]
    return list(dict.fromkeys(given))


def _sizes(arguments: argparse.Namespace) -> phases.Sizes:
    sizes = QUICK if arguments.quick else phases.Sizes()
    overrides = {"mails": arguments.mails, "handled": arguments.handled, "store_mails": arguments.store_mails,
                 "kills": arguments.kills, "profile": arguments.profile and arguments.profile.resolve()}
    return dataclasses.replace(sizes, **{key: value for key, value in overrides.items() if value})


def _measure(arguments: argparse.Namespace, sizes: phases.Sizes, say: Callable[[str], None]) -> list[phases.Row]:
    """Every chosen measurement against one Dovecot; a measurement that breaks is a row, not the end."""
    rows: list[phases.Row] = []
    chosen = _chosen(arguments)
    with tempfile.TemporaryDirectory(prefix="mailrelay-bench-") as scratch:
        workdir = Path(scratch)
        with Dovecot(make_tls_material(workdir / "tls")) as dovecot, _postgres(chosen, say) as postgres:
            bench = phases.Bench(dovecot, load_corpus(arguments.corpus), workdir, sizes, say, postgres)
            say(f"Dovecot on 127.0.0.1:{dovecot.tls_port}; sizes {sizes}")
            for name in chosen:
                rows += _attempt(name, bench)
    return rows


def _postgres(chosen: list[str], say: Callable[[str], None]) -> contextlib.AbstractContextManager[Postgres | None]:
    """One private PostgreSQL for the measurements that need it (each takes a fresh database); None when
    none is chosen, or when PostgreSQL is not installed (those measurements then say so in their row)."""
    if not ON_POSTGRES.intersection(chosen):
        return contextlib.nullcontext()
    if postgres_bin() is None:
        say("PostgreSQL is not installed (apt-get install postgresql): the shared-state figures are skipped")
        return contextlib.nullcontext()
    return _started(Postgres(), say)


@contextlib.contextmanager
def _started(postgres: Postgres, say: Callable[[str], None]):
    with postgres:
        say(f"PostgreSQL {postgres.bin.parent.name} on 127.0.0.1:{postgres.port}")
        yield postgres


def _attempt(name: str, bench: phases.Bench) -> list[phases.Row]:
    began = time.monotonic()
    try:
        rows = MEASUREMENTS[name](bench)
    except Exception as error:  # the other measurements still run; the traceback goes to stderr
        traceback.print_exc()
        rows = [phases.Row(name, f"failed: {type(error).__name__}: {error}", "", False)]
    bench.say(f"{name}: done in {time.monotonic() - began:.0f} s")
    return rows


def _table(rows: list[phases.Row]) -> str:
    header = ("figure", "value", "floor / target", "ok?")
    cells = [header] + [(row.figure, row.value, row.reference,
                         "" if row.ok is None else "ok" if row.ok else "MISS") for row in rows]
    widths = [max(len(line[column]) for line in cells) for column in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _machine(seconds: float) -> str:
    return "\n".join([
        f"machine:  {_cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"Dovecot {_dovecot_version()}",
        f"command:  {' '.join([Path(sys.executable).name, *sys.argv])}",
        f"run time: {seconds / 60:.1f} min",
    ])


def _revision() -> str:
    """The commit measured, and whether the working tree differs from it (the relay runs from the tree)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True).stdout.strip()

    changed = git("status", "--porcelain", "--untracked-files=no", "--", "mailrelay").splitlines()
    return f"commit {git('rev-parse', '--short', 'HEAD') or 'unknown'}" + (
        f" with uncommitted changes to {len(changed)} file(s) of mailrelay/" if changed else "")


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _dovecot_version() -> str:
    result = subprocess.run([dovecot_binary() or "dovecot", "--version"], capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


def _say(began: float, text: str) -> None:
    print(f"[{time.monotonic() - began:7.1f} s] {text}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
