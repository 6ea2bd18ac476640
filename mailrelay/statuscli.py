"""`mailrelay status`: read-only, beside the service; the exit code is the verdict, for any monitoring system.
Who cannot read the state (a monitor, under the shipped unit) gets the facts from the service's status file."""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from mailrelay import health, statusfile
from mailrelay.config import load_settings
from mailrelay.i18n import tr


def status(config: Path, as_json: bool) -> int:
    settings = load_settings(config)
    seen = statusfile.observe(settings, statusfile.read_path())
    if seen.facts is None:
        return _unknown(seen, as_json)
    facts = dataclasses.replace(seen.facts, node=settings.node) if settings.state_url else seen.facts
    verdict = health.assess(facts, health.Thresholds(settings.outage_seconds, settings.quarantined_per_day,
                                                     settings.failover_seconds))
    if as_json:
        report = dict(health.report(facts, verdict), source=seen.source, state_error=seen.state_problem)
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        print(health.format_report(facts, verdict))
        if seen.source == "status_file":
            print(tr(f"  (aus der Statusdatei {seen.status_file}, geschrieben {seen.written_at}; "
                     f"{seen.state_problem})",
                     f"  (from the status file {seen.status_file}, written {seen.written_at}; {seen.state_problem})"))
    return verdict.code


def _unknown(seen: statusfile.Observation, as_json: bool) -> int:
    """Neither the state nor a status file: failing, saying what to look at."""
    problem = tr(f"{seen.state_problem}, und keine Statusdatei {seen.status_file}: ist mailrelay je gelaufen, "
                 "läuft der Dienst? (sonst als Benutzer des Dienstes oder als root aufrufen)",
                 f"{seen.state_problem}, and no status file {seen.status_file}: has mailrelay ever run, is the "
                 "service running? (else call it as the service's user or as root)")
    if as_json:
        print(json.dumps({"status": health.WORDS[health.FAILING], "problems": [problem], "source": "none",
                          "state_error": seen.state_problem}, ensure_ascii=False, indent=2))
    else:
        print(f"mailrelay: {health.Verdict(health.FAILING).label}: {problem}", file=sys.stderr)
    return health.FAILING
