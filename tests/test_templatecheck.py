"""Template problems are found when the templates are loaded, with the template file and line."""
from __future__ import annotations

import shutil

import pytest

from mailrelay.policy import load_policy_files
from mailrelay.tomlcheck import ConfigError
from tests.helpers import REPO


@pytest.fixture
def templates(tmp_path):
    folder = tmp_path / "templates"
    shutil.copytree(REPO / "templates", folder)
    return folder


def _problems(templates) -> list:
    with pytest.raises(ConfigError) as caught:
        load_policy_files(REPO / "config" / "routing.toml", REPO / "config" / "signals.toml", templates)
    return list(caught.value.problems)


def _line_of(path, text: str) -> int:
    return next(number for number, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_shipped_templates_pass_the_trial_render():
    """The shipped templates render with every variable they use."""
    policy = load_policy_files(REPO / "config" / "routing.toml", REPO / "config" / "signals.toml",
                               REPO / "templates")
    assert policy.templates.text is not None


def test_template_syntax_error_names_file_and_line(templates):
    """A Jinja syntax error is reported at its file and line."""
    path = templates / "summary.txt.j2"
    path.write_text(path.read_text().replace("{% endif %}", "{% endiff %}", 1))
    [problem] = _problems(templates)
    assert problem.file == str(path)
    assert problem.line == _line_of(path, "{% endiff %}")
    assert "endiff" in problem.message


def test_variable_the_summary_does_not_provide_names_file_and_line(templates):
    """A misspelt variable in each of two templates is reported for both, each at its line."""
    text, html = templates / "summary.txt.j2", templates / "summary.html.j2"
    text.write_text(text.read_text() + "Telefon: {{ mail.phone }}\n")
    html.write_text(html.read_text().replace("{{ decision.reason }}", "{{ decision.reasn }}"))
    found = {(p.file, p.line, p.message) for p in _problems(templates)}
    assert (str(text), _line_of(text, "mail.phone"),
            "template: 'mailrelay.model.Inbound object' has no attribute 'phone' "
            "(the summary does not provide it)") in found
    assert (str(html), _line_of(html, "decision.reasn"),
            "template: 'mailrelay.model.Decision object' has no attribute 'reasn' "
            "(the summary does not provide it)") in found


def test_unknown_top_level_name_is_reported(templates):
    """A name no summary defines ({{ applicant }}) is an error, not an empty string."""
    path = templates / "subject.txt.j2"
    path.write_text(path.read_text().rstrip("\n") + " {{ applicant }}\n")
    [problem] = _problems(templates)
    assert (problem.file, problem.line) == (str(path), _line_of(path, "applicant"))
    assert "'applicant' is undefined" in problem.message


def test_missing_template_file_is_reported(templates):
    """A deleted template is named."""
    (templates / "summary.html.j2").unlink()
    [problem] = _problems(templates)
    assert problem.file == str(templates / "summary.html.j2") and "missing" in problem.message
