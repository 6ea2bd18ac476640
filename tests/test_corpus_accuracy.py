"""`mailrelay evaluate` over the labelled sets: a person's mail is never archived unseen, machine mail is
never passed on, and routing holds. Each test prints its figures."""
from __future__ import annotations

import json

import pytest

from mailrelay.cli import main
from tests.helpers import REPO

CONFIG = REPO / "config" / "mailrelay.toml"
SHARED = REPO.parent / "shared" / "corpus"
SETS = {"real": SHARED / "real", "pool-a": SHARED / "pool-a", "corpus-b": REPO / "tests" / "corpus-b"}


@pytest.fixture(scope="module")
def evaluated():
    """The evaluate report of each labelled set, run once through the command line."""
    return {}


def _summary(evaluated: dict, name: str, capsys) -> dict:
    folder = SETS[name]
    if not (folder / "labels.jsonl").exists():
        pytest.skip(f"labelled set not found at {folder}")
    if name not in evaluated:
        capsys.readouterr()
        assert main(["--config", str(CONFIG), "evaluate", str(folder), "--json"]) == 0
        evaluated[name] = json.loads(capsys.readouterr().out)
        _print_figures(name, evaluated[name], capsys)
    return evaluated[name]


def _print_figures(name: str, summary: dict, capsys) -> None:
    forwarded = summary["machine_forwarded"]
    fields = ", ".join(f"{field} {100 * row['accuracy']:.1f}% (n={row['judged']})"
                       for field, row in summary["accuracy"].items() if row["accuracy"] is not None)
    with capsys.disabled():
        print(f"\n{name}: {fields}; person mail archived {len(summary['person_archived'])} of "
              f"{summary['person_mails']}; machine mail to a desk {len(forwarded['desk'])}, to the editors "
              f"{len(forwarded['editors'])} of {summary['machine_mails']}")


@pytest.mark.parametrize("name", sorted(SETS))
def test_machine_mail_never_reaches_a_desk(evaluated, name, capsys):
    """No bounce, auto-reply, list mail or spam of any labelled set is forwarded to a ministry desk."""
    summary = _summary(evaluated, name, capsys)
    assert summary["machine_forwarded"]["desk"] == []


def test_real_person_mail_is_not_archived_unseen(evaluated, capsys):
    """Of the real person-written mails at most 2 are archived as machine mail (a few labels are judgement
    calls: a newsletter address, a mailer-daemon sender)."""
    summary = _summary(evaluated, "real", capsys)
    assert summary["person_mails"] >= 80
    assert len(summary["person_archived"]) <= 2, summary["person_archived"]


def test_real_machine_mail_rarely_reaches_the_editors(evaluated, capsys):
    """At most 2% of the real machine mails (bounces, auto-replies, list mail, spam) go to the editors."""
    summary = _summary(evaluated, "real", capsys)
    editors = summary["machine_forwarded"]["editors"]
    assert summary["machine_mails"] >= 600
    assert len(editors) <= 0.02 * summary["machine_mails"], editors


@pytest.mark.parametrize("name", ["pool-a", "corpus-b"])
def test_synthetic_person_mail_is_never_archived(evaluated, name, capsys):
    """No application or inquiry of the synthetic sets is archived."""
    assert _summary(evaluated, name, capsys)["person_archived"] == []


def test_pool_a_routes_at_least_97_percent(evaluated, capsys):
    """Route accuracy on the labelled sample inbox is at least 97%."""
    assert _summary(evaluated, "pool-a", capsys)["accuracy"]["route"]["accuracy"] >= 0.97
