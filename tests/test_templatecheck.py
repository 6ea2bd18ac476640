"""Template problems are found when the templates are loaded, with the template file and line."""
from __future__ import annotations

import shutil

import pytest

from mailrelay.i18n import set_language
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
    """A misspelt end tag is reported at its own line, naming the block that is open and where it opens."""
    path = templates / "summary.txt.j2"
    path.write_text(path.read_text().replace("{% endif %}", "{% endiff %}", 1))
    [problem] = _problems(templates)
    assert problem.file == str(path)
    assert problem.line == _line_of(path, "{% endiff %}")
    opened = _line_of(path, "{% if review_reason %}")
    assert problem.message == (f"Vorlage der Zusammenfassung: {{% endiff %}} passt hier nicht: offen ist {{% if %}} "
                               f"aus Zeile {opened}")
    assert problem.hint == "mit {% endif %} schließen"


def test_unclosed_if_is_reported_at_its_opening_tag(templates):
    """An {% if %} whose {% endif %} is missing is named at the line of the {% if %}, not at the file's end."""
    path = templates / "summary.txt.j2"
    text = path.read_text()
    path.write_text(text.replace("{% endif %}\nGuten Tag,", "Guten Tag,", 1))
    [problem] = _problems(templates)
    assert (problem.file, problem.line) == (str(path), _line_of(path, "{% if classification.unauthenticated %}"))
    assert problem.message == "Vorlage der Zusammenfassung: {% if %} wird nicht geschlossen"
    assert problem.line < len(path.read_text().splitlines()) - 5


def test_unclosed_braces_are_reported_at_their_line(templates):
    """`{{ country_name` without its `}}` is named at the line the braces open."""
    path = templates / "summary.txt.j2"
    path.write_text(path.read_text().replace("{{ country_name }}", "{{ country_name", 1))
    [problem] = _problems(templates)
    assert (problem.line, problem.message) == (_line_of(path, "{{ country_name"),
                                               "Vorlage der Zusammenfassung: {{ wird nicht mit }} geschlossen")


def test_variable_the_summary_does_not_provide_names_file_and_line(templates):
    """A misspelt field in each of two templates is reported for both, each at its line, naming the variable
    as written and the fields there are, without Python's class names."""
    text, html = templates / "summary.txt.j2", templates / "summary.html.j2"
    text.write_text(text.read_text() + "Telefon: {{ mail.phone }}\n")
    html.write_text(html.read_text().replace("{{ decision.rules_version }}", "{{ decision.rules_versin }}"))
    problems = _problems(templates)
    found = {(p.file, p.line, p.message) for p in problems}
    assert (str(text), _line_of(text, "mail.phone"),
            "Vorlage der Zusammenfassung: 'mail.phone' gibt es nicht: mail hat kein Feld 'phone'") in found
    assert (str(html), _line_of(html, "decision.rules_versin"),
            "Vorlage der Zusammenfassung: 'decision.rules_versin' gibt es nicht: decision hat kein Feld "
            "'rules_versin'") in found
    assert len(problems) == 2
    assert all("mailrelay." not in str(problem) and " object" not in str(problem) for problem in problems)
    assert "subject" in next(p.hint for p in problems if p.file == str(text))


def test_unknown_top_level_name_is_reported(templates):
    """A name no summary defines ({{ applicant }}) is an error, not an empty string; the hint lists the names."""
    path = templates / "subject.txt.j2"
    path.write_text(path.read_text().rstrip("\n") + " {{ applicant }}\n")
    [problem] = _problems(templates)
    assert (problem.file, problem.line) == (str(path), _line_of(path, "applicant"))
    assert problem.message == "Vorlage des Betreffs: 'applicant' gibt es im Betreff nicht"
    assert problem.hint.startswith("vorhanden: classification, country_name")


def test_acknowledgement_template_is_not_called_the_summary(templates):
    """A misspelt variable in an acknowledgement names the acknowledgement and its own variables."""
    path = templates / "acknowledgement.de.txt.j2"
    path.write_text(path.read_text().replace("{{ name }}", "{{ nme }}", 1))
    [problem] = _problems(templates)
    assert problem.message == ("Vorlage der Eingangsbestätigung: 'nme' gibt es in der Eingangsbestätigung nicht")
    assert problem.hint == "vorhanden: desk, name, received, received_en, subject"
    assert "Zusammenfassung" not in str(problem)


def test_a_field_that_can_be_empty_gets_the_hint_to_test_it_first(templates):
    """sender_address is empty for mails without a From: the hint says to wrap it in an {% if %}."""
    path = templates / "summary.txt.j2"
    path.write_text(path.read_text() + "Name: {{ sender_address.name }}\n")
    [problem] = _problems(templates)
    assert problem.line == _line_of(path, "sender_address.name")
    assert "'sender_address.name': sender_address ist bei manchen Mails leer" in problem.message
    assert problem.hint == "mit {% if sender_address %} … {% endif %} umschließen"


def test_mistake_in_the_labels_is_reported_once_in_english_on_request(templates):
    """A broken macro in _labels.j2, which two templates import, is one problem; English when asked."""
    set_language("en")
    path = templates / "_labels.j2"
    path.write_text(path.read_text().replace("{%- endmacro -%}", "{%- endmacr -%}", 1))
    [problem] = _problems(templates)
    assert (problem.file, problem.line) == (str(path), _line_of(path, "endmacr"))
    assert problem.message.startswith("template: {% endmacr %} does not fit here: {% macro %} from line")


def test_missing_template_file_is_reported(templates):
    """A deleted template is named."""
    (templates / "summary.html.j2").unlink()
    [problem] = _problems(templates)
    assert problem.file == str(templates / "summary.html.j2") and problem.message == "die Vorlage summary.html.j2 fehlt"
