"""A mail's text cut into the sender's own words and signature; quoted mails and legal footers left out."""
from __future__ import annotations

import re
from dataclasses import dataclass

from mailrelay.classify.signals import TextRules

_SEPARATOR = re.compile(r"^\s*(--|__|—)\s*$")
_MAX_CLOSING = 40       # "Mit freundlichen Grüßen" fits; a sentence that thanks someone does not
_MAX_SIGNATURE_LINES = 12
_MAX_SIGNATURE_WIDTH = 100

Line = tuple[int, str]  # (line number in the mail's text, counted from 1; the line)


@dataclass(frozen=True)
class Spot:
    """A sentence of the sender's text, or a line of the signature, and where it stands."""

    text: str
    plain: str      # the text with the call's own vocabulary blanked out (see [text] ignore)
    region: str     # "body" or "signature"
    where: str      # "body line 4", "signature line 2"
    weaker: bool = False     # about others or the past ("zuvor", "zusammen mit")
    question: bool = False
    unit: bool = False       # a signature line naming a unit ("Referat Cluster"): its topic, not the organisation


@dataclass(frozen=True)
class Letter:
    body: tuple[Spot, ...]
    signature: tuple[Spot, ...]
    notes: tuple[str, ...] = ()     # what was left out, for the evidence trail

    @property
    def spots(self) -> tuple[Spot, ...]:
        return self.signature + self.body


def read_letter(text: str, rules: TextRules) -> Letter:
    """Split the text into body sentences and signature lines, without quotes and footers."""
    own, quote_line = _own_lines(list(enumerate(text.splitlines(), start=1)), rules)
    notes = [f"quoted mail from line {quote_line} left out"] if quote_line else []
    head, signature, footer_line = _split_signature(own, rules)
    if footer_line:
        notes.append(f"legal footer from line {footer_line} left out")
    body = tuple(spot for paragraph in _paragraphs(head) for spot in _sentences(paragraph, rules))
    signed = tuple(_signature_spot(index, line, rules) for index, (_, line) in enumerate(signature, start=1))
    return Letter(body, signed, tuple(notes))


def _signature_spot(index: int, line: str, rules: TextRules) -> Spot:
    unit = bool(rules.units and rules.units.match(line.strip()))
    return Spot(line.strip(), _blanked(line.strip(), rules), "signature", f"signature line {index}", unit=unit)


def _own_lines(lines: list[Line], rules: TextRules) -> tuple[list[Line], int | None]:
    """The sender's own lines, and where the first quote starts.

    '>' lines are quotes wherever they stand, so a reply below them (bottom-posting) is kept; a quote
    without marks (an attribution line not followed by '>' lines, an Outlook header block) runs to the end."""
    own: list[Line] = []
    quote_line, skip = None, 0
    for index, (number, line) in enumerate(lines):
        if skip:  # the second line of a wrapped attribution
            skip -= 1
            continue
        if line.lstrip().startswith(">"):
            quote_line = quote_line or number
            continue
        attribution = _attribution(lines, index, rules)
        following = lines[index + 1][1] if index + 1 < len(lines) else ""
        if attribution and _marked_quote_follows(lines, index + attribution):
            quote_line, skip = quote_line or number, attribution - 1
        elif attribution or _header_block(line, following, rules):
            return own, quote_line or number
        else:
            own.append((number, line))
    return own, quote_line


def _attribution(lines: list[Line], index: int, rules: TextRules) -> int:
    """How many lines the attribution ('Am ... schrieb ...:') at `index` takes: 0 (none), 1, or 2 when wrapped."""
    line = lines[index][1]
    if any(pattern.search(line) for pattern in rules.quote_starts):
        return 1
    following = lines[index + 1][1].strip() if index + 1 < len(lines) else ""
    return 2 if following and any(pattern.search(f"{line} {following}") for pattern in rules.quote_starts) else 0


def _marked_quote_follows(lines: list[Line], start: int) -> bool:
    following = next((line for _, line in lines[start:] if line.strip()), "")
    return following.lstrip().startswith(">")


def _header_block(line: str, following: str, rules: TextRules) -> bool:
    field = rules.quoted_header_field
    return bool(field and field.match(line) and field.match(following))


def _split_signature(own: list[Line], rules: TextRules) -> tuple[list[Line], list[Line], int | None]:
    """(body lines, signature lines, first footer line): the signature follows the last closing formula."""
    for index in range(len(own) - 1, 0, -1):
        number, line = own[index]
        if len(line.strip()) <= _MAX_CLOSING and rules.closings and rules.closings.search(line):
            tail, footer_line = _without_footer(own[index + 1:], rules)
            if _looks_like_signature(tail):
                return own[:index], _signature_lines(tail), footer_line
    return _signature_without_closing(own, rules)


def _signature_without_closing(own: list[Line], rules: TextRules) -> tuple[list[Line], list[Line], int | None]:
    """Without a closing formula: the part after a '--' line, or a short last paragraph of short lines."""
    separator = next((i for i in range(len(own) - 1, 0, -1) if _SEPARATOR.match(own[i][1])), None)
    if separator is not None:
        tail, footer_line = _without_footer(own[separator + 1:], rules)
        if tail and _looks_like_signature(tail):
            return own[:separator], _signature_lines(tail), footer_line
    paragraphs = _paragraphs(own)
    if len(paragraphs) >= 2:
        last, footer_line = _without_footer(paragraphs[-1], rules)
        if 2 <= len(last) <= 8 and _looks_like_signature(last):
            return own[:own.index(paragraphs[-1][0])], last, footer_line
    return own, [], None


def _looks_like_signature(lines: list[Line]) -> bool:
    filled = [line for _, line in lines if line.strip()]
    return len(filled) <= _MAX_SIGNATURE_LINES and all(len(line) <= _MAX_SIGNATURE_WIDTH for line in filled)


def _signature_lines(lines: list[Line]) -> list[Line]:
    return [(number, line) for number, line in lines if line.strip() and not _SEPARATOR.match(line)]


def _without_footer(lines: list[Line], rules: TextRules) -> tuple[list[Line], int | None]:
    """Lines before the first footer line; from there on, that paragraph and the ones after it are footer."""
    if rules.footer is None:
        return lines, None
    for index, (number, line) in enumerate(lines):
        if rules.footer.search(line):
            kept = lines[:index]
            # The paragraph the footer starts in may have begun with a separator line; drop it too.
            while kept and (not kept[-1][1].strip() or _SEPARATOR.match(kept[-1][1])):
                kept.pop()
            return kept, number
    return lines, None


def _paragraphs(lines: list[Line]) -> list[list[Line]]:
    paragraphs: list[list[Line]] = [[]]
    for number, line in lines:
        if line.strip():
            paragraphs[-1].append((number, line))
        elif paragraphs[-1]:
            paragraphs.append([])
    return [paragraph for paragraph in paragraphs if paragraph]


def _sentences(paragraph: list[Line], rules: TextRules) -> list[Spot]:
    """The paragraph's sentences, across hard line breaks, each named by the line it starts on."""
    starts, text = [], ""
    for number, line in paragraph:
        starts.append((len(text), number))
        text += line.strip() + " "
    spots = []
    for match in re.finditer(r"\S.*?(?:[.!?](?=\s+[A-ZÄÖÜ\"„(])|$)", text.strip()):
        sentence = match.group(0).strip()
        number = max(line_number for offset, line_number in starts if offset <= match.start())
        weaker = bool(rules.weaker and rules.weaker.search(sentence))
        spots.append(Spot(sentence, _blanked(sentence, rules), "body", f"body line {number}", weaker,
                          sentence.endswith("?")))
    return spots


def _blanked(text: str, rules: TextRules) -> str:
    """Naming the expert group or the platform says nothing about the sender, so those words are blanked."""
    return rules.ignore.sub(" … ", text) if rules.ignore else text
