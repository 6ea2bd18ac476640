"""Pages: try a changed routing file (what `check` and `replay` say) and explain an uploaded mail. Applies nothing.

The changed text goes to a private temporary folder only for as long as the check reads it: never where the
relay reads its config, which the editors keep in config/ and bring live with a reload as before. An
uploaded mail is never written anywhere."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from flask import Blueprint, current_app, render_template, request, url_for

from mailrelay.config import Settings
from mailrelay.tomlcheck import ConfigError, Problem
from mailrelay.web.app import console

bp = Blueprint("trial", __name__)

YOURS = "Ihre Fassung"  # how the page names the pasted or uploaded routing file
REPLAY_SINCE = "30d"


@dataclass(frozen=True)
class Shown:
    """One problem as the page shows it: the file by a name the editor knows, its line (0: the whole file)."""

    where: str
    line: int
    message: str
    hint: str = ""


@dataclass(frozen=True)
class Trial:
    """What check and replay say of a changed routing file; `replayed` is None when it did not load."""

    problems: list[Shown] = field(default_factory=list)
    rules: int = 0
    desks: int = 0
    replayed: int | None = None
    diff: list[dict] = field(default_factory=list)
    replay_problem: str = ""


@bp.route("/regel", methods=["GET", "POST"])
def rules():
    settings = console().settings
    if request.method == "GET":
        return render_template("rules.html", routing=_in_force(settings), trial=None, since=REPLAY_SINCE)
    text, unreadable = _submitted_routing()
    trial = Trial([Shown(YOURS, 0, unreadable)]) if unreadable else try_routing(settings, text)
    return render_template("rules.html", routing=text, trial=trial, since=REPLAY_SINCE,
                           rows=[_diff_row(change) for change in trial.diff])


@bp.route("/mail-pruefen", methods=["GET", "POST"])
def explain():
    if request.method == "GET":
        return render_template("explain.html")
    upload = request.files.get("eml")
    data = upload.read() if upload else b""
    if not data:
        return render_template("explain.html", problem="Bitte eine Mail-Datei (.eml) auswählen."), 400
    return render_template("explain.html", **_explained(data))


@bp.app_errorhandler(413)
def too_large(error):
    """An upload over [web] max_upload_kb (Flask's MAX_CONTENT_LENGTH): said in German, on the page it came from."""
    limit = console().web.max_upload_kb
    page = "rules.html" if request.endpoint == "trial.rules" else "explain.html"
    message = (f"Die Datei ist zu groß: höchstens {limit} KB sind erlaubt ([web] max_upload_kb). "
               "Bitte eine kleinere Datei wählen.")
    return render_template(page, too_large=message, routing=_in_force(console().settings), trial=None,
                           since=REPLAY_SINCE), 413


def try_routing(settings: Settings, text: str) -> Trial:
    """`check` on `text` as the routing file beside the signals, templates and reference in force; if it loads,
    `replay` of the last 30 days with it. The text lives in a private temporary folder while it is read."""
    from mailrelay.policy import load_policy_files

    with tempfile.TemporaryDirectory(prefix="mailrelay-trial-") as folder:
        path = Path(folder) / "routing.toml"
        path.write_text(text, encoding="utf-8")
        try:
            policy = load_policy_files(path, settings.signals_path, settings.templates_path,
                                       settings.reference_path)
        except ConfigError as error:
            return Trial([_shown(problem, path) for problem in error.problems])
    checked = Trial(rules=len(policy.rules.rules), desks=len(policy.rules.desks))
    return _replayed(checked, settings, policy)


def _replayed(checked: Trial, settings: Settings, policy) -> Trial:
    from mailrelay.editorcli import replay
    from mailrelay.mailfile import InputError
    from mailrelay.state import StoreUnavailable
    from mailrelay.timespec import parse_since

    try:
        total, diff = replay(settings, policy, parse_since(REPLAY_SINCE))
    except InputError:
        return _with(checked, replay_problem="Das Relay hat noch keine Mail bearbeitet: nichts nachzuspielen.")
    except StoreUnavailable:
        return _with(checked, replay_problem="Die Zustandsdatenbank ist nicht erreichbar; bitte später noch "
                                             "einmal versuchen.")
    return _with(checked, replayed=total, diff=diff)


def _with(trial: Trial, **changes) -> Trial:
    import dataclasses

    return dataclasses.replace(trial, **changes)


def _shown(problem: Problem, trial_path: Path) -> Shown:
    """The problem without the temporary path: the trial file is "Ihre Fassung", the others by their names."""
    ours = Path(problem.file).resolve() == trial_path.resolve()
    where = YOURS if ours else _known_name(Path(problem.file))

    def clean(text: str) -> str:
        return text.replace(str(trial_path), YOURS).replace(str(trial_path.parent), YOURS)
    return Shown(where, problem.line, clean(problem.message), clean(problem.hint))


def _known_name(path: Path) -> str:
    """A file in force by its path under the main config's folder where it lies there, else by its name."""
    try:
        return str(path.resolve().relative_to(console().config.parent.resolve()))
    except ValueError:
        return path.name


def _submitted_routing() -> tuple[str, str]:
    """The uploaded file if one was chosen, else the text field; (text, why it cannot be read or "")."""
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        data = upload.read()
    else:
        data = request.form.get("routing", "").encode("utf-8")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return "", "Die Datei ist kein UTF-8-Text; bitte als UTF-8 speichern (so wie config/routing.toml)."
    # A browser sends a text field's lines ending in CRLF; the line numbers stay those of the text.
    return text.replace("\r\n", "\n"), ""


def _in_force(settings: Settings) -> str:
    try:
        return settings.rules_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def _diff_row(change: dict) -> dict:
    """One changed mail for the table: its number, when, from whom, what about, and the route before and after."""
    link = url_for("history.mail", mail_id=int(change["mail"])) if "history.mail" in current_app.view_functions \
        else None
    return {"id": change["mail"], "link": link, "when": (change.get("first_seen") or "")[:16].replace("T", " "),
            "sender": change.get("sender") or "(kein Absender)", "subject": change.get("subject") or "(ohne Betreff)",
            "before": change["old_route"], "before_rule": change["old_rule"],
            "after": change["new_route"], "after_rule": change["new_rule"]}


def _explained(data: bytes) -> dict:
    """What `explain` says of the uploaded bytes, or that they are no mail, or that the rules do not load."""
    from mailrelay.explain import explain_mail
    from mailrelay.parse import not_a_mail

    reason = not_a_mail(data)
    if reason:
        return {"not_a_mail": reason}
    try:
        return {"text": explain_mail(console().settings, data, "upload:eml")}
    except ConfigError:
        return {"problem": "Die geltenden Regeln lassen sich nicht laden; `mailrelay check` nennt die Fehler."}
