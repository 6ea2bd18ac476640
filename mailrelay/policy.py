"""The editors' part of the configuration (rules, signals, templates), loaded and swapped as one."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from mailrelay.classify.reference import Reference, load_reference
from mailrelay.classify.signals import Signals, load_signals
from mailrelay.config import Settings
from mailrelay.render import Templates, load_templates
from mailrelay.rules import Rules, load_rules
from mailrelay.templatecheck import compile_problem, trial_render
from mailrelay.tomlcheck import ConfigError, Problem


@dataclass(frozen=True)
class Policy:
    rules: Rules
    signals: Signals
    templates: Templates
    version: str
    reference: Reference = field(default_factory=Reference)  # shipped data plus the editors' additions


def load_policy(settings: Settings) -> Policy:
    """Load rules, signals, templates and reference additions; raises ConfigError naming every problem in all."""
    return load_policy_files(settings.rules_path, settings.signals_path, settings.templates_path,
                             settings.reference_path)


def load_policy_files(rules_path: Path, signals_path: Path, templates_path: Path,
                      reference_path: Path | None = None) -> Policy:
    problems: list[Problem] = []
    rules = _collect(problems, load_rules, rules_path)
    signals = _collect(problems, load_signals, signals_path)
    templates = _collect(problems, _templates, templates_path)
    reference = _collect(problems, load_reference, reference_path)
    if problems:
        raise ConfigError(problems)
    version = _version(rules_path, signals_path, templates_path, reference_path)
    return Policy(rules, signals, templates, version, reference)


def _collect(problems: list[Problem], loader, path: Path):
    try:
        return loader(path)
    except ConfigError as error:
        problems.extend(error.problems)
        return None


def _templates(directory: Path) -> Templates:
    """Compile the templates and render them once with sample values."""
    try:
        templates = load_templates(directory)
    except (jinja2.TemplateSyntaxError, jinja2.TemplateNotFound) as error:
        raise ConfigError([compile_problem(error, directory)]) from None
    problems = trial_render(templates, directory)
    if problems:
        raise ConfigError(problems)
    return templates


def _version(rules_path: Path, signals_path: Path, templates_path: Path, reference_path: Path | None) -> str:
    """A short hash over every file the decisions depend on, named in each audit record."""
    digest = hashlib.sha256()
    paths = [rules_path, signals_path] + sorted(templates_path.glob("*.j2"))
    paths += [reference_path] if reference_path else []
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]
