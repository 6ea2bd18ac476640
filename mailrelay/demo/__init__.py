"""The embedded default: the real pipeline over a bundled sample inbox, into a local outbox."""
from __future__ import annotations

import mailbox
import shutil
import sys
from pathlib import Path

from mailrelay.app import PolicyHolder, build_relay
from mailrelay.config import load_settings
from mailrelay.state import open_state

_MARKER = ".mailrelay-demo"
_MAILS = Path(__file__).parent / "mails"


def shipped(name: str) -> Path:
    """The project's own `config/` or `templates/`: beside the package in a checkout, else installed."""
    checkout = Path(__file__).resolve().parents[2] / name
    return checkout if checkout.is_dir() else Path(sys.prefix) / "share" / "mailrelay" / name


def run_demo(workdir: Path) -> str:
    """Set up a fresh work folder, relay the sample inbox once, return a table of what happened."""
    _fresh(workdir)
    inbox = mailbox.Maildir(workdir / "inbox", create=True)
    for path in sorted(_MAILS.glob("*.eml")):
        inbox.add(path.read_bytes())
    config = workdir / "mailrelay.toml"
    config.write_text(_config_text(), encoding="utf-8")
    settings = load_settings(config)
    store = open_state(settings)
    try:
        report = build_relay(settings, store, PolicyHolder(settings)).poll()
    finally:
        store.close()
    return _table(report.mails, workdir)


def _fresh(workdir: Path) -> None:
    if workdir.exists():
        if not (workdir / _MARKER).exists():
            raise SystemExit(f"mailrelay demo: {workdir} exists and is not a demo folder; choose --workdir")
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    (workdir / _MARKER).touch()


def _config_text() -> str:
    config, templates = shipped("config"), shipped("templates")
    return f"""# Written by `mailrelay demo`: the shipped rules and templates, a Maildir in, a folder out.
rules = "{config / 'routing.toml'}"
signals = "{config / 'signals.toml'}"
reference = "{config / 'reference.toml'}"
templates = "{templates}"

[maildir]
path = "inbox"

[outbox]
path = "outbox"

[state]
path = "state.sqlite"

[relay]
from_address = "relay@clusterplattform.example"
"""


def _table(mails: list[dict], workdir: Path) -> str:
    rows = [("outcome", "kind", "route", "rule", "subject")]
    rows += [(m["outcome"], m.get("kind", ""), m["route"], m.get("rule", ""), m["subject"][:48]) for m in mails]
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    folders = ", ".join(sorted(path.name for path in (workdir / "inbox").iterdir() if path.name.startswith(".")))
    lines += ["", f"Forwards written to {workdir / 'outbox'}; audit trail in {workdir / 'state.sqlite'};",
              f"the inbox was emptied into {folders} under {workdir / 'inbox'}."]
    return "\n".join(lines)
