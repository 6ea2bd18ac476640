"""HTML -> readable plain text, for mails that have no text/plain part."""
from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCK_TAGS = frozenset({"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote"})
_SKIPPED_TAGS = frozenset({"style", "script", "head", "title"})


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in _SKIPPED_TAGS:
            self.skipping += 1
        elif tag in _BLOCK_TAGS:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCK_TAGS and tag != "br":
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.chunks.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """Text of an HTML document, one line per block element, blank runs collapsed."""
    collector = _TextCollector()
    collector.feed(html)
    collector.close()
    lines = (re.sub(r"[ \t\xa0]+", " ", line).strip() for line in "".join(collector.chunks).splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
