"""Measure parse+classify on a labelled folder of .eml files: per-field and route accuracy, misses with evidence."""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mailrelay.classify import classify  # noqa: E402  (the repo is put on the path first)
from mailrelay.model import Classification, RawMail  # noqa: E402
from mailrelay.parse import parse  # noqa: E402
from mailrelay.signals import load_signals  # noqa: E402

DEFAULT_CORPUS = REPO.parent / "shared" / "corpus" / "pool-a"
MACHINE = {"auto_reply", "bounce", "bulk", "spam"}
PERSON = {"application", "inquiry"}
EXPERT_SENDERS = {"cluster_organisation", "research", "consultancy"}


@dataclass(frozen=True)
class Result:
    file: str
    label: dict
    got: dict
    classification: Classification


def default_route(kind: str, sender: str, country: str) -> str:
    """The default routing policy of the corpus README."""
    if kind in MACHINE:
        return "none"
    if kind != "application" or country != "DE":
        return "editors"
    if sender == "public_body":
        return "desk-public"
    return "desk-experts" if sender in EXPERT_SENDERS else "editors"


def run(folder: Path, signals_path: Path) -> tuple[list[Result], float]:
    signals = load_signals(signals_path)
    labels = [json.loads(line) for line in (folder / "labels.jsonl").read_text().splitlines() if line.strip()]
    started = time.perf_counter()
    results = [_one(folder, label, signals) for label in labels]
    return results, time.perf_counter() - started


def _one(folder: Path, label: dict, signals) -> Result:
    inbound = parse(RawMail(label["file"], (folder / label["file"]).read_bytes()))
    result = classify(inbound, signals)
    got = {"kind": str(result.kind), "sender": str(result.sender),
           "level": str(result.level) if result.level else None, "country": result.country}
    got["route"] = default_route(got["kind"], got["sender"], got["country"])
    return Result(label["file"], label, got, result)


def judged(result: Result, field: str) -> bool:
    """Kind and route are judged for every mail; sender, level and country for a person's mail only."""
    return field in ("kind", "route") or result.label["kind"] in PERSON


def accuracy(results: list[Result], field: str) -> tuple[int, int]:
    subset = [r for r in results if judged(r, field)]
    return sum(r.got[field] == r.label[field] for r in subset), len(subset)


def machine_forwarded(results: list[Result]) -> list[Result]:
    return [r for r in results if r.label["kind"] in MACHINE and r.got["route"] != "none"]


def report(results: list[Result], title: str) -> list[str]:
    lines = [f"{title}: {len(results)} mails"]
    for field in ("kind", "sender", "level", "country", "route"):
        right, total = accuracy(results, field)
        lines.append(f"  {field:8} {right:4}/{total:<4} {100 * right / max(total, 1):6.1f}%")
    lines.append(f"  machine mail routed anywhere but none: {len(machine_forwarded(results))}")
    return lines


def misses(results: list[Result]) -> list[str]:
    lines = []
    for result in results:
        wrong = [f for f in ("kind", "sender", "level", "country", "route")
                 if judged(result, f) and result.got[f] != result.label[f]]
        if wrong:
            lines.append(f"{result.file}: " + ", ".join(f"{f} {result.got[f]} (label {result.label[f]})"
                                                         for f in wrong))
            lines += [f"    {e.field}: {e.signal} [{e.where}]" for e in _deciding(result.classification, wrong)]
    return lines


def _deciding(classification: Classification, fields: list[str]):
    """The decision note and the heaviest findings behind each wrong field (a wrong route follows from those)."""
    for name in [field for field in fields if field != "route"] or ["kind", "sender", "country"]:
        items = sorted(classification.evidence_for(name), key=lambda e: -e.weight)
        yield from [e for e in items if e.where == "classifier"] + [e for e in items if e.where != "classifier"][:4]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--signals", type=Path, default=REPO / "config" / "signals.toml")
    args = parser.parse_args(argv)
    results, seconds = run(args.folder, args.signals)
    even = [r for r in results if int(Path(r.file).stem) % 2 == 0] if _numbered(results) else []
    odd = [r for r in results if r not in even]
    lines = report(results, f"all ({seconds:.2f} s for parse+classify)")
    if even:
        lines += report(even, "even-numbered files (development half)") + report(odd, "odd-numbered files (check half)")
    lines += ["", "misses:"] + (misses(results) or ["  none"])
    print("\n".join(lines))
    return 1 if machine_forwarded(results) else 0


def _numbered(results: list[Result]) -> bool:
    return all(Path(r.file).stem.isdigit() for r in results)


if __name__ == "__main__":
    sys.exit(main())
