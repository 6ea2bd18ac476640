"""`mailrelay quarantine ...` and `mailrelay review ...`: the editors' two queues.

They run beside the service, without its lock: `list` and `show` read, `release` and `drop` record the
editor's request (checked, with who and why), and the service's next poll carries it out. Exit codes: 0
done; 1 a mistake said in one line (no such mail, not in this queue, no such desk, no state file or a
state database that cannot be reached, a release the rules would not forward). A configuration that is
not usable ends with 2 in cli.main."""
from __future__ import annotations

import argparse
import json
import sqlite3
import sys

from mailrelay.i18n import tr

EXIT_OK, EXIT_REFUSED = 0, 1
_WORDS = {"quarantine": ("Quarantäne", "quarantine"), "review": ("Prüfliste", "review queue")}


def add_queue_commands(commands) -> None:
    """Add the quarantine and review commands to the top-level parser."""
    for queue, help_text in (("quarantine", "mails held back: list, show, release, drop"),
                             ("review", "mails sent to the editors for review: list, show, release, drop")):
        parser = commands.add_parser(queue, help=help_text)
        parser.set_defaults(handler=_run, queue=queue)
        actions = parser.add_subparsers(dest="queue_command", required=True, metavar="COMMAND")
        listing = actions.add_parser("list", help="the mails waiting, oldest first")
        listing.add_argument("--json", action="store_true", help="a JSON list, one object per mail")
        show = actions.add_parser("show", help="one mail: sender, reason, its text, what the rules say now")
        show.add_argument("id", metavar="ID", help="the mail's number, as list shows it")
        show.add_argument("--json", action="store_true")
        release = actions.add_parser("release", help="have the next poll forward it")
        release.add_argument("id", metavar="ID")
        release.add_argument("--to", metavar="DESK", required=queue == "review",
                             help="the desk to send it to" + ("" if queue == "review" else
                                                              " (default: as the rules in force decide)"))
        release.add_argument("--by", metavar="NAME", help="who releases it (default: the Unix user)")
        drop = actions.add_parser("drop", help="take it out of the queue without forwarding it"
                                  + (" (to the ignored mailbox)" if queue == "quarantine" else ": done"))
        drop.add_argument("id", metavar="ID")
        drop.add_argument("--reason", metavar="TEXT", required=queue == "quarantine",
                          help="why" + (" (default: erledigt)" if queue == "review" else ""))
        drop.add_argument("--by", metavar="NAME", help="who drops it (default: the Unix user)")


def _run(arguments: argparse.Namespace) -> int:
    """Open the state the config names and do the command; an expected mistake is one line on stderr."""
    from mailrelay.config import load_settings
    from mailrelay.queues.core import QueueError
    from mailrelay.state import StoreUnavailable

    settings = load_settings(arguments.config)
    try:
        if settings.state_url is None and not settings.state_path.exists():
            raise QueueError(tr(f"keine Zustandsdatei unter {settings.state_path}: das Relay ist hier noch nie"
                                " gelaufen", f"no state file at {settings.state_path}: the relay has never run here"))
        return _COMMANDS[arguments.queue_command](arguments, settings)
    except QueueError as error:
        print(f"mailrelay {arguments.queue}: {error}", file=sys.stderr)
        return EXIT_REFUSED
    except sqlite3.OperationalError as error:  # a state file from before the queues, opened read-only
        print(f"mailrelay {arguments.queue}: " + tr(
            f"die Zustandsdatei ist nicht lesbar ({error}); ist sie älter, ergänzt der Dienst sie bei seinem"
            " nächsten Start", f"the state file cannot be read ({error}); if it is older, the service adds"
            " what is missing when it next starts"), file=sys.stderr)
        return EXIT_REFUSED
    except StoreUnavailable as error:
        reason = str(error.__cause__ or error).strip().split("\n")[0]  # the driver's words, not the store's frame
        print(f"mailrelay {arguments.queue}: " + tr(f"die Zustandsdatenbank ist nicht erreichbar: {reason}",
                                                   f"the state database cannot be reached: {reason}"), file=sys.stderr)
        return EXIT_REFUSED


def _list(arguments: argparse.Namespace, settings) -> int:
    from mailrelay.queues.core import entry

    with _store(settings, read_only=True) as store:
        mails = [entry(record) for record in store.queue(arguments.queue)]
    print(json.dumps(mails, ensure_ascii=False, indent=2) if arguments.json else _table(arguments.queue, mails))
    return EXIT_OK


def _show(arguments: argparse.Namespace, settings) -> int:
    from mailrelay.queues.view import describe, look

    with _store(settings, read_only=True) as store:
        found = look(store, settings, _mail_id(arguments.id), arguments.queue)
    print(json.dumps(found, ensure_ascii=False, indent=2) if arguments.json else describe(found))
    return EXIT_OK


def _release(arguments: argparse.Namespace, settings) -> int:
    from mailrelay.pipeline import Identity
    from mailrelay.policy import load_policy
    from mailrelay.queues.core import default_editor, request_release

    policy = load_policy(settings)
    with _store(settings) as store:
        record, decision = request_release(store, policy, Identity.of(settings), arguments.queue,
                                           _mail_id(arguments.id), arguments.to, arguments.by or default_editor())
    how = tr(f"an {decision.desk}", f"to {decision.desk}") if arguments.to else \
        tr(f"an {decision.desk} (Regel {decision.rule})", f"to {decision.desk} (rule {decision.rule})")
    print(tr(f"Mail {record.id} freigegeben: der nächste Abruf leitet sie {how} weiter.",
             f"mail {record.id} released: the next poll forwards it {how}."))
    return EXIT_OK


def _drop(arguments: argparse.Namespace, settings) -> int:
    from mailrelay.queues.core import DONE, default_editor, request_drop

    with _store(settings) as store:
        record = request_drop(store, arguments.queue, _mail_id(arguments.id), arguments.reason or DONE,
                              arguments.by or default_editor())
    if arguments.queue == "review":
        print(tr(f"Mail {record.id} erledigt: sie ist aus der Prüfliste genommen.",
                 f"mail {record.id} done: it has left the review queue."))
    else:
        print(tr(f"Mail {record.id} verworfen: der nächste Abruf legt sie ins Postfach für ignorierte Mails.",
                 f"mail {record.id} dropped: the next poll moves it to the ignored mailbox."))
    return EXIT_OK


_COMMANDS = {"list": _list, "show": _show, "release": _release, "drop": _drop}


def _table(queue: str, mails: list[dict]) -> str:
    if not mails:
        return tr("Die Quarantäne ist leer.", "The quarantine is empty.") if queue == "quarantine" else \
            tr("Keine Mail wartet auf Prüfung.", "No mail is waiting for review.")
    review = queue == "review"
    header = (tr("Nr.", "no."), tr("seit (UTC)", "since (UTC)"), *((tr("Sicherheit", "confidence"),) if review else ()),
              tr("Absender", "sender"), tr("Betreff", "subject"), tr("Grund", "reason"))
    rows = [header] + [(str(mail["id"]), _time(mail["date"] if review else mail["since"]),
                        *((_confidence(mail["confidence"]),) if review else ()), mail["sender"] or "-",
                        _shorten(mail["subject"], 40), mail["reason"] or "-") for mail in mails]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header) - 1)]
    lines = ["  ".join([*(cell.ljust(width) for cell, width in zip(row, widths)), row[-1]]) for row in rows]
    de, en = _WORDS[queue]
    count = len(mails)
    footer = tr(f"{count} Mail{'s' if count != 1 else ''} in der {de}. Weiter: mailrelay {queue} show NR, "
                f"release NR {'--to REFERAT' if review else '[--to REFERAT]'}, drop NR "
                f"{'[--reason TEXT]' if review else '--reason TEXT'}",
                f"{count} mail{'s' if count != 1 else ''} in the {en}. Next: mailrelay {queue} show NO, "
                f"release NO {'--to DESK' if review else '[--to DESK]'}, drop NO "
                f"{'[--reason TEXT]' if review else '--reason TEXT'}")
    return "\n".join([*lines, footer])


def _mail_id(text: str) -> int:
    from mailrelay.queues.core import QueueError

    if not text.strip().lstrip("#").isdigit():
        raise QueueError(tr(f"{text!r} ist keine Mailnummer (list zeigt sie in der ersten Spalte)",
                            f"{text!r} is not a mail number (list shows them in its first column)"))
    return int(text.strip().lstrip("#"))


def _store(settings, read_only: bool = False):
    """The state store without the service's lock: the store serialises a request with a running poll."""
    import contextlib

    from mailrelay.state import open_state

    return contextlib.closing(open_state(settings, read_only=read_only))


def _confidence(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _time(stamp: str | None) -> str:
    return (stamp or "")[:16].replace("T", " ") or "-"


def _shorten(text: str | None, width: int) -> str:
    text = " ".join((text or "").split()) or tr("(ohne Betreff)", "(no subject)")
    return text if len(text) <= width else text[:width - 1] + "…"
