"""How the relay is doing: the facts `status` prints, and the one judgement that both `status` and the
operators' outage notes use, so what a monitor sees and what the operators are told never disagree."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone

from mailrelay.store import Store

HEALTHY, DEGRADED, FAILING = 0, 1, 2
WORDS = {HEALTHY: "healthy", DEGRADED: "degraded", FAILING: "failing"}


@dataclass(frozen=True)
class Thresholds:
    outage_seconds: float = 1800  # how long the relay may be unable to do its job before it says so
    quarantined_per_day: int = 10  # more quarantined mails than this in 24 hours is not bad luck


@dataclass(frozen=True)
class Facts:
    """What the state store says, at `now` (ISO 8601, UTC)."""

    now: str
    last_poll_ok: str | None
    last_forward: str | None
    waiting: int
    oldest_waiting: str | None
    quarantined_last_day: int
    last_error: str | None
    last_error_at: str | None
    failing_since: str | None
    paused: str | None
    outage_since: str | None  # when the operators were told the relay cannot do its job


@dataclass(frozen=True)
class Verdict:
    code: int
    problems: list[str] = field(default_factory=list)

    @property
    def word(self) -> str:
        return WORDS[self.code]


def facts(store: Store, now: datetime | None = None) -> Facts:
    now = now or datetime.now(timezone.utc)
    counts = store.mail_counts(_iso(now - timedelta(days=1)))
    return Facts(now=_iso(now), last_poll_ok=store.flag("last_poll_ok"), last_forward=counts["last_forward"],
                 waiting=counts["waiting"], oldest_waiting=counts["oldest_waiting"],
                 quarantined_last_day=counts["quarantined"], last_error=store.flag("last_error"),
                 last_error_at=store.flag("last_error_at"), failing_since=store.flag("failing_since"),
                 paused=store.paused(), outage_since=store.flag("outage_since"))


def assess(state: Facts, limits: Thresholds) -> Verdict:
    """FAILING when the relay has not been able to do its job for longer than the outage time (or is
    paused, or quarantines far more than usual); DEGRADED when something is wrong but not for long yet."""
    failing: list[str] = []
    degraded: list[str] = []
    if state.paused:
        failing.append(f"forwarding is paused: {state.paused}")
    if state.failing_since:
        (failing if _older(state.failing_since, state.now, limits.outage_seconds) else degraded).append(
            f"polls failing since {state.failing_since}: {state.last_error}")
    elif state.last_poll_ok is None:
        degraded.append("no successful poll yet")
    elif _older(state.last_poll_ok, state.now, limits.outage_seconds):
        failing.append(f"no poll since {state.last_poll_ok}: is the service running?")
    if state.waiting:
        long_ago = state.oldest_waiting and _older(state.oldest_waiting, state.now, limits.outage_seconds)
        (failing if long_ago else degraded).append(
            f"{state.waiting} mail(s) waiting for the SMTP server, the oldest since {state.oldest_waiting}")
    if state.quarantined_last_day:
        growing = state.quarantined_last_day > limits.quarantined_per_day
        (failing if growing else degraded).append(
            f"{state.quarantined_last_day} mail(s) quarantined in the last 24 hours")
    if failing:
        return Verdict(FAILING, failing + degraded)
    return Verdict(DEGRADED if degraded else HEALTHY, degraded)


def report(state: Facts, verdict: Verdict) -> dict:
    """The status as one JSON-able object."""
    return {"status": verdict.word, "problems": verdict.problems, **asdict(state)}


def format_report(state: Facts, verdict: Verdict) -> str:
    lines = [f"mailrelay: {verdict.word}",
             f"  last successful poll: {state.last_poll_ok or 'never'}",
             f"  last forward:         {state.last_forward or 'never'}",
             f"  waiting for retry:    {state.waiting}",
             f"  quarantined (24 h):   {state.quarantined_last_day}",
             f"  last error:           {state.last_error or 'none'}"
             + (f" (at {state.last_error_at})" if state.last_error_at else "")]
    lines += [f"  problem: {problem}" for problem in verdict.problems]
    return "\n".join(lines)


def _older(moment: str, now: str, seconds: float) -> bool:
    return datetime.fromisoformat(now) - datetime.fromisoformat(moment) > timedelta(seconds=seconds)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")
