"""The overview's charts: mails per day as stacked bars, laid out here (pure) and drawn as SVG by the template."""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

DAYS = 30
WIDTH, HEIGHT = 720, 220  # the viewBox; the SVG scales to the page's width
_LEFT, _RIGHT, _BOTTOM, _TOP = 36, 18, 22, 8  # room for the counts on the left and the dates below
OUTCOMES = (("forwarded", "weitergeleitet", "#2e7d32"), ("ignored", "nur archiviert", "#8d8d8d"),
            ("quarantined", "in Quarantäne", "#c62828"), ("other", "noch in Arbeit oder wartend", "#f0a800"))
NO_DESK = "none"  # the route of a mail no desk received
_DESK_COLOURS = ("#1f5fa8", "#7b3fa0", "#00838f", "#ad5a00", "#5d7d1f", "#b0306a", "#455a64", "#6d4c41")
_NO_DESK_COLOUR = "#bdbdbd"


@dataclass(frozen=True)
class Series:
    """One stacked category: its key in the data, its German label, its colour and its total."""

    key: str
    label: str
    colour: str
    total: int = 0


@dataclass(frozen=True)
class Bar:
    day: date
    series: str
    count: int
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str  # shown on hover, and read out by a screen reader: no script needed


@dataclass(frozen=True)
class Chart:
    title: str
    days: tuple[date, ...]
    series: tuple[Series, ...]
    bars: tuple[Bar, ...]
    ticks: tuple[tuple[float, int], ...]  # (y, count) of the horizontal guide lines
    labels: tuple[tuple[float, str], ...]  # (x, "28.11.") under some of the days
    width: int = WIDTH
    height: int = HEIGHT
    left: int = _LEFT
    right: int = WIDTH - _RIGHT
    baseline: float = HEIGHT - _BOTTOM

    @property
    def empty(self) -> bool:
        return not self.bars

    @property
    def summary(self) -> str:
        """The chart in one sentence, for a screen reader."""
        counts = ", ".join(f"{item.total} {item.label}" for item in self.series if item.total)
        return f"{self.title}: {counts or 'keine Mails'}"


def local_day(stamp: str) -> date:
    """The calendar day of a stored time (ISO 8601, UTC) in the server's time zone, as the editors count days."""
    return datetime.fromisoformat(stamp).astimezone().date()


def last_days(today: date, count: int = DAYS) -> tuple[date, ...]:
    return tuple(today - timedelta(days=back) for back in range(count - 1, -1, -1))


def outcome_of(mail: dict) -> str:
    state = mail["state"]
    return state if state in ("forwarded", "ignored", "quarantined") else "other"


def desk_of(mail: dict) -> str:
    return mail["route"] or NO_DESK


def by_outcome(mails: Iterable[dict], days: tuple[date, ...]) -> Chart:
    counts = _count(mails, days, outcome_of)
    series = [Series(key, label, colour) for key, label, colour in OUTCOMES]
    return layout("Mails pro Tag nach Ergebnis", days, series, counts)


def by_desk(mails: Iterable[dict], days: tuple[date, ...], names: dict[str, str] | None = None) -> Chart:
    """Desks by their number of mails, most first, under the names they go by; the mails no desk received last."""
    counts = _count(mails, days, desk_of)
    desks = sorted((key for key in counts if key != NO_DESK), key=lambda key: (-sum(counts[key].values()), key))
    names = names or {}
    series = [Series(desk, names.get(desk, desk), _DESK_COLOURS[index % len(_DESK_COLOURS)])
              for index, desk in enumerate(desks)]
    series.append(Series(NO_DESK, "an kein Referat", _NO_DESK_COLOUR))
    return layout("Mails pro Tag nach Referat", days, series, counts)


def _count(mails: Iterable[dict], days: tuple[date, ...], key: Callable[[dict], str]) -> dict[str, Counter]:
    shown = set(days)
    counts: dict[str, Counter] = {}
    for mail in mails:
        day = local_day(mail["first_seen"])
        if day in shown:
            counts.setdefault(key(mail), Counter())[day] += 1
    return counts


def layout(title: str, days: tuple[date, ...], series: list[Series], counts: dict[str, Counter]) -> Chart:
    """Stacked bars, one per day, the series from the bottom up in the order given."""
    series = tuple(Series(item.key, item.label, item.colour, sum(counts.get(item.key, Counter()).values()))
                   for item in series)
    top = _nice_ceiling(max((sum(counts.get(item.key, Counter())[day] for item in series) for day in days),
                            default=0))
    slot = (WIDTH - _LEFT - _RIGHT) / len(days)
    scale = (HEIGHT - _BOTTOM - _TOP) / top
    bars = []
    for index, day in enumerate(days):
        stacked = 0
        for item in series:
            count = counts.get(item.key, Counter())[day]
            if count:
                y = HEIGHT - _BOTTOM - (stacked + count) * scale
                bars.append(Bar(day, item.key, count, round(_LEFT + index * slot + 1, 1), round(y, 1),
                                round(slot - 2, 1), round(count * scale, 1), item.colour,
                                f"{day:%d.%m.%Y}: {count} {item.label}"))
                stacked += count
    ticks = tuple((round(HEIGHT - _BOTTOM - value * scale, 1), value) for value in _tick_values(top))
    labels = tuple((round(_LEFT + (index + 0.5) * slot, 1), f"{day:%d.%m.}") for index, day in enumerate(days)
                   if (len(days) - 1 - index) % 5 == 0)
    return Chart(title, days, series, tuple(bars), ticks, labels)


def _nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... at least `value` (at least 1): round guide lines."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def _tick_values(top: int) -> list[int]:
    """0, the top and up to three whole numbers between."""
    if top <= 5:
        return list(range(top + 1))
    return [0, top // 4, top // 2, top * 3 // 4, top] if top % 4 == 0 else [0, top // 2, top]
