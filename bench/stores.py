"""Backlog throughput by state store: the same mails relayed by one `once` with the SQLite file and with a
fresh PostgreSQL database, on the same Dovecot and sink, in alternating order."""
from __future__ import annotations

from dataclasses import dataclass

from bench import inbox
from bench.mails import backlog
from bench.phases import Bench, Row
from bench.relayrun import OnceRun, relay_config, run_once, share_state
from tests.servers import SmtpSink

ROUNDS = 2  # SQLite first in the first round, PostgreSQL first in the second: drift hits both alike
STORES = ("SQLite", "PostgreSQL")


@dataclass(frozen=True)
class StoreRun:
    """One store's `once` over one round's backlog, and what the sink got from it."""

    store: str
    run: OnceRun
    received: int
    left: int


def store_throughput(bench: Bench) -> list[Row]:
    """Half the mails per round, for each store a fresh user and a fresh state; mails/s over the `once` walls."""
    if bench.postgres is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    per_round = max(1, bench.sizes.store_mails // ROUNDS)
    mails = list(backlog(bench.samples, per_round, tag="s"))
    runs: list[StoreRun] = []
    with SmtpSink() as sink:
        for round_number in range(ROUNDS):
            order = STORES if round_number % 2 == 0 else STORES[::-1]
            for store in order:
                runs.append(_relay(bench, sink, store, mails, f"store-{round_number}-{store.lower()}"))
    return _store_rows(per_round, runs)


def _relay(bench: Bench, sink: SmtpSink, store: str, mails: list[bytes], name: str) -> StoreRun:
    user = inbox.fresh_user(name)
    appended, size = inbox.fill(bench.dovecot, user, mails)
    config = relay_config(bench.directory(name), bench.dovecot, user, sink)
    if store == "PostgreSQL":
        share_state(config, bench.postgres.database(), node="bench")
    before = len(sink.received)
    run = run_once(config)
    received = len(sink.received) - before
    bench.say(f"store: {store}: {appended} mails ({size / 1e6:.0f} MB) in {run.wall:.1f} s "
              f"({appended / run.wall:.1f} mails/s), {run.counts}, sink got {received}")
    if run.returncode:
        bench.say(f"store: {store}: `once` exited {run.returncode}: {run.stderr.strip()[-500:]}")
    return StoreRun(store, run, received, inbox.count(bench.dovecot, user, "INBOX"))


def _store_rows(per_round: int, runs: list[StoreRun]) -> list[Row]:
    rates = {store: _rate(per_round, [run for run in runs if run.store == store]) for store in STORES}
    ratio = rates["PostgreSQL"] / rates["SQLite"]
    outcomes = {store: [run.run.counts for run in runs if run.store == store] for store in STORES}
    sound = all(run.run.returncode == 0 and run.left == 0 and run.received == run.run.counts.get("forwarded", -1)
                for run in runs) and outcomes["SQLite"] == outcomes["PostgreSQL"]
    total = per_round * ROUNDS
    return [
        *(Row(f"store: {store}, backlog {total}", _rate_text(per_round, runs, store),
              f"{ROUNDS} rounds of {per_round}, same mails") for store in STORES),
        Row("store: PostgreSQL / SQLite", f"{ratio:.2f}", "same mails, servers and sink, alternating order"),
        Row("store: outcomes and sink", _outcome_text(outcomes["PostgreSQL"][0]) + f"; inbox left "
            f"{sum(run.left for run in runs)}", "the same for both stores, every forward at the sink", sound),
    ]


def _rate(per_round: int, runs: list[StoreRun]) -> float:
    return per_round * len(runs) / sum(run.run.wall for run in runs)


def _rate_text(per_round: int, runs: list[StoreRun], store: str) -> str:
    mine = [run for run in runs if run.store == store]
    walls = ", ".join(f"{run.run.wall:.1f}" for run in mine)
    polls = [run.run.poll_seconds for run in mine]
    poll = f"; polls {', '.join(f'{value:.1f}' for value in polls)} s" if all(polls) else ""
    return f"{_rate(per_round, mine):.1f} mails/s (walls {walls} s{poll})"


def _outcome_text(counts: dict) -> str:
    return ", ".join(f"{key} {value}" for key, value in sorted(counts.items()))
