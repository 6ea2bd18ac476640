"""`--since`: the same forms in every command, as the store writes its timestamps."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from mailrelay.i18n import set_language
from mailrelay.timespec import age_in_days, parse_since

NOW = datetime(2026, 12, 1, 12, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize(("text", "moment"), [
    ("30d", "2026-11-01T12:30:00.000+00:00"),
    ("12h", "2026-12-01T00:30:00.000+00:00"),
    ("90m", "2026-12-01T11:00:00.000+00:00"),
    ("1w", "2026-11-24T12:30:00.000+00:00"),
    (" 2W ", "2026-11-17T12:30:00.000+00:00"),
    ("0m", "2026-12-01T12:30:00.000+00:00"),
    ("2026-11-11", "2026-11-11T00:00:00.000+00:00"),
    ("2026-11-11T08:15", "2026-11-11T08:15:00.000+00:00"),
    ("2026-11-11T08:15:00+01:00", "2026-11-11T07:15:00.000+00:00"),
])
def test_since_forms_give_the_store_timestamp(text, moment):
    """Spans count back from now; a date is UTC midnight; a time with a zone is turned into UTC."""
    assert parse_since(text, NOW) == moment


def test_since_compares_as_a_string_with_the_store_form():
    """The result has the store's form (isoformat with milliseconds, UTC), so SQLite compares it as text."""
    stored = NOW.isoformat(timespec="milliseconds")
    assert parse_since("1m", NOW) < stored < parse_since("2026-12-02", NOW)


@pytest.mark.parametrize("text", ["", "30", "d", "30 Tage", "letzte Woche", "2026-13-01", "-5d"])
def test_since_refuses_other_text_naming_the_forms(text):
    """Anything else is a ValueError that names the forms it takes, in German by default."""
    with pytest.raises(ValueError, match=r"nimmt 30d, 12h, 90m, 1w oder ein Datum wie 2026-11-11, nicht"):
        parse_since(text, NOW)


def test_since_refuses_in_english_when_asked():
    """With English chosen the message is English."""
    set_language("en")
    with pytest.raises(ValueError, match=r"takes 30d, 12h, 90m, 1w or a date like 2026-11-11, not '3 weeks'"):
        parse_since("3 weeks", NOW)


def test_age_in_days_of_every_form():
    """How far back a --since reaches, for the note about raw mails kept only so long."""
    assert age_in_days(parse_since("5w", NOW), NOW) == 35
    assert age_in_days(parse_since("2026-10-01", NOW), NOW) == pytest.approx(61.52, abs=0.01)
    assert age_in_days(parse_since("12h", NOW), NOW) == 0.5
