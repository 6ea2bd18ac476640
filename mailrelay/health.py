"""How the relay is doing: the facts `status` prints, and the one judgement that both `status` and the
operators' outage notes use, so what a monitor sees and what the operators are told never disagree."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone

from mailrelay.i18n import tr
from mailrelay.state import Store

HEALTHY, DEGRADED, FAILING = 0, 1, 2
WORDS = {HEALTHY: "healthy", DEGRADED: "degraded", FAILING: "failing"}  # the --json value: stable English


@dataclass(frozen=True)
class Thresholds:
    outage_seconds: float = 1800  # how long the relay may be unable to do its job before it says so
    quarantined_per_day: int = 10  # more quarantined mails than this in 24 hours is not bad luck
    failover_seconds: float = 30  # a shared state: how long the lease may go unrenewed before no node acts


@dataclass(frozen=True)
class RefusedReload:
    """A change of the editors' files that a reload refused; it stands until a later reload succeeds."""

    at: str  # when these problems were first refused (ISO 8601, UTC)
    files: tuple[str, ...]
    problems: tuple[str, ...]  # each `file:line: what is wrong`
    version_in_force: str  # the rules version that stayed in force
    noted: bool = False  # the alert desk has been sent its one note about it

    @classmethod
    def from_json(cls, text: str | dict | None) -> "RefusedReload | None":
        data = json.loads(text) if isinstance(text, str) else text
        if not data:
            return None
        return cls(data["at"], tuple(data["files"]), tuple(data["problems"]), data["version_in_force"],
                   bool(data.get("noted")))

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


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
    in_quarantine: int = 0  # waiting in the editors' quarantine queue now (released and dropped mails not)
    in_review: int = 0  # sent to the editors for review and not yet worked
    rules_version: str | None = None  # the version of the editors' files in force
    reload_refused: RefusedReload | None = None
    # A shared state: the lease as the database has it (epoch, holder, silent_seconds), and this node's name.
    lease: dict | None = None
    node: str | None = None

    @property
    def role(self) -> str | None:
        """'active' when this node holds a live lease, 'standby' when another node does or none does;
        None for a state of one node (a SQLite file)."""
        if self.lease is None:
            return None
        return "active" if self.node and self.lease.get("holder") == self.node \
            and self.lease.get("silent_seconds") is not None else "standby"

    @classmethod
    def from_dict(cls, data: dict) -> "Facts":
        """Facts as `report` or the status file wrote them; keys a newer version added are left out."""
        known = {item.name for item in dataclasses.fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        values["reload_refused"] = RefusedReload.from_json(values.get("reload_refused"))
        return cls(**values)


@dataclass(frozen=True)
class Verdict:
    code: int
    problems: list[str] = field(default_factory=list)

    @property
    def word(self) -> str:
        return WORDS[self.code]

    @property
    def label(self) -> str:
        """The verdict in the language in force, for people."""
        return {HEALTHY: tr("gesund", "healthy"), DEGRADED: tr("beeinträchtigt", "degraded"),
                FAILING: tr("gestört", "failing")}[self.code]


def facts(store: Store, now: datetime | None = None) -> Facts:
    now = now or datetime.now(timezone.utc)
    counts = store.mail_counts(_iso(now - timedelta(days=1)))
    return Facts(now=_iso(now), last_poll_ok=store.flag("last_poll_ok"), last_forward=counts["last_forward"],
                 waiting=counts["waiting"], oldest_waiting=counts["oldest_waiting"],
                 quarantined_last_day=counts["quarantined"], last_error=store.flag("last_error"),
                 last_error_at=store.flag("last_error_at"), failing_since=store.flag("failing_since"),
                 paused=store.paused(), outage_since=store.flag("outage_since"),
                 in_quarantine=counts.get("in_quarantine", 0), in_review=counts.get("in_review", 0),
                 rules_version=store.flag("rules_version"),
                 reload_refused=RefusedReload.from_json(store.flag("reload_refused")),
                 lease=_lease(store))


def _lease(store: Store) -> dict | None:
    row = store.lease_row() if hasattr(store, "lease_row") else None
    if row is None:
        return None
    silent = row.get("silent_seconds")
    return {"epoch": row["epoch"], "holder": row["holder"],
            "silent_seconds": None if silent is None else round(silent, 1),
            "since": row["since"].isoformat(timespec="seconds") if row.get("since") else None}


def assess(state: Facts, limits: Thresholds) -> Verdict:
    """FAILING when the relay has not been able to do its job for longer than the outage time (or is
    paused, or quarantines far more than usual); DEGRADED when something is wrong but not for long yet,
    or the editors' latest change was refused and older rules are in force."""
    failing: list[str] = []
    degraded: list[str] = []
    if state.lease is not None:
        _leased(state, limits, failing)
    if state.paused:
        failing.append(tr(f"die Weiterleitung ist angehalten: {state.paused}", f"forwarding is paused: {state.paused}"))
    _polls(state, limits, failing, degraded)
    if state.waiting:
        long_ago = state.oldest_waiting and _older(state.oldest_waiting, state.now, limits.outage_seconds)
        (failing if long_ago else degraded).append(tr(
            f"{state.waiting} Mail(s) warten auf den SMTP-Server, die älteste seit {state.oldest_waiting}",
            f"{state.waiting} mail(s) waiting for the SMTP server, the oldest since {state.oldest_waiting}"))
    if state.quarantined_last_day:
        growing = state.quarantined_last_day > limits.quarantined_per_day
        (failing if growing else degraded).append(tr(
            f"{state.quarantined_last_day} Mail(s) in den letzten 24 Stunden in die Quarantäne verschoben",
            f"{state.quarantined_last_day} mail(s) quarantined in the last 24 hours"))
    if state.reload_refused:
        degraded.append(_refused_problem(state.reload_refused))
    if failing:
        return Verdict(FAILING, failing + degraded)
    return Verdict(DEGRADED if degraded else HEALTHY, degraded)


def _polls(state: Facts, limits: Thresholds, failing: list[str], degraded: list[str]) -> None:
    if state.failing_since:
        (failing if _older(state.failing_since, state.now, limits.outage_seconds) else degraded).append(tr(
            f"Abfragen scheitern seit {state.failing_since}: {state.last_error}",
            f"polls failing since {state.failing_since}: {state.last_error}"))
    elif state.last_poll_ok is None:
        degraded.append(tr("noch keine erfolgreiche Abfrage", "no successful poll yet"))
    elif _older(state.last_poll_ok, state.now, limits.outage_seconds):
        failing.append(tr(f"keine Abfrage seit {state.last_poll_ok}: läuft der Dienst?",
                          f"no poll since {state.last_poll_ok}: is the service running?"))


def _leased(state: Facts, limits: Thresholds, failing: list[str]) -> None:
    silent = state.lease.get("silent_seconds")
    if not state.lease.get("holder") or silent is None or silent > limits.failover_seconds:
        failing.append(tr("kein Knoten ist aktiv: läuft mailrelay auf einem der Knoten, ist die Datenbank erreichbar?",
                          "no node is active: is mailrelay running on one of the nodes, can it reach the database?"))


def _refused_problem(refused: RefusedReload) -> str:
    files = ", ".join(refused.files)
    return tr(f"Regeländerung am {refused.at} abgelehnt ({len(refused.problems)} Fehler in {files}); "
              f"in Kraft bleibt Version {refused.version_in_force}",
              f"rules change refused at {refused.at} ({len(refused.problems)} problem(s) in {files}); "
              f"version {refused.version_in_force} stays in force")


def report(state: Facts, verdict: Verdict) -> dict:
    """The status as one JSON-able object."""
    return {"status": verdict.word, "problems": verdict.problems, **asdict(state), "role": state.role}


def format_report(state: Facts, verdict: Verdict) -> str:
    never, none = tr("nie", "never"), tr("keiner", "none")
    rows = [(tr("letzte erfolgreiche Abfrage", "last successful poll"), state.last_poll_ok or never),
            (tr("letzte Weiterleitung", "last forward"), state.last_forward or never),
            (tr("warten auf neuen Versuch", "waiting for retry"), state.waiting),
            (tr("in Quarantäne", "in quarantine"), state.in_quarantine),
            (tr("zur Prüfung", "waiting for review"), state.in_review),
            (tr("neu in Quarantäne (24 h)", "quarantined (24 h)"), state.quarantined_last_day),
            (tr("Regeln in Kraft", "rules in force"), tr(f"Version {state.rules_version}",
                                                         f"version {state.rules_version}")
             if state.rules_version else tr("unbekannt", "unknown")),
            (tr("letzter Fehler", "last error"), (state.last_error or none)
             + (tr(f" (um {state.last_error_at})", f" (at {state.last_error_at})") if state.last_error_at else ""))]
    if state.lease is not None:
        rows.insert(0, (tr("Knoten", "node"), _node_line(state)))
    width = max(len(label) for label, _ in rows) + 1
    lines = [f"mailrelay: {verdict.label}"] + [f"  {label + ':':<{width}} {value}" for label, value in rows]
    lines += _refused_lines(state.reload_refused)
    lines += [f"  {tr('Problem', 'problem')}: {problem}" for problem in verdict.problems]
    return "\n".join(lines)


def _node_line(state: Facts) -> str:
    lease = state.lease
    holder, epoch, silent = lease.get("holder"), lease.get("epoch"), lease.get("silent_seconds")
    renewed = tr(f"vor {silent:.0f} s erneuert", f"renewed {silent:.0f} s ago") if silent is not None else \
        tr("nicht erneuert", "not renewed")
    if state.role == "active":
        return tr(f"{state.node}, aktiv (Epoche {epoch}, {renewed})", f"{state.node}, active (epoch {epoch}, {renewed})")
    who = state.node or tr("dieser", "this one")
    if holder and silent is not None:
        return tr(f"{who}, in Bereitschaft; aktiv ist {holder} (Epoche {epoch}, {renewed})",
                  f"{who}, standby; {holder} is active (epoch {epoch}, {renewed})")
    return tr(f"{who}, in Bereitschaft; kein Knoten ist aktiv", f"{who}, standby; no node is active")


def _refused_lines(refused: RefusedReload | None) -> list[str]:
    if refused is None:
        return []
    head = tr(f"  Regeländerung abgelehnt am {refused.at}, in Kraft bleibt Version {refused.version_in_force}:",
              f"  rules change refused at {refused.at}, version {refused.version_in_force} stays in force:")
    return [head] + [f"    {problem}" for problem in refused.problems]


def _older(moment: str, now: str, seconds: float) -> bool:
    return datetime.fromisoformat(now) - datetime.fromisoformat(moment) > timedelta(seconds=seconds)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")
