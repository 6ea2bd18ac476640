"""A large mail's skeleton: its MIME structure and text with the bodies of big attachments left out.

Parsing a 20 MB mail with the standard library (and again with mail-parser) holds several copies of
it as text and line lists: about 150 MB. Classification needs the headers, the text parts and the
attachments' names and sizes, not their bytes, so a mail over SKELETON_FROM is cut down first: each
non-text leaf part over OMIT_FROM keeps its headers, loses its body, and gains a header with the size
the body would have decoded to. The walk works on byte offsets; it copies only what it keeps. The
forward still carries the original, unmodified."""
from __future__ import annotations

import re
from email.parser import BytesHeaderParser
from email.policy import compat32

SKELETON_FROM = 1024 * 1024  # mails at least this large are parsed from their skeleton
OMIT_FROM = 64 * 1024  # attachment bodies at least this large are left out of it
TEXT_KEPT = 1024 * 1024  # a text part is cut to this much: enough to classify, never megabytes of it
OMITTED_HEADER = "X-Mailrelay-Omitted-Bytes"
_MAX_DEPTH = 100  # deeper nesting is kept as it is and parsed as it is (it is quarantined if that fails)
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def skeleton(data: bytes) -> bytes:
    """The mail with big attachment bodies left out (see the module docstring)."""
    return _entity(data, 0, len(data), 0)


def _entity(data: bytes, start: int, end: int, depth: int) -> bytes:
    found = _HEADER_END.search(data, start, end)
    if found is None or depth > _MAX_DEPTH:
        return data[start:end]
    head = data[start:found.end()]
    headers = BytesHeaderParser(policy=compat32).parsebytes(head)
    boundary = headers.get_boundary() if headers.get_content_maintype() == "multipart" else None
    if boundary:
        return head + _multipart(data, found.end(), end, boundary.encode("ascii", "replace"), depth)
    size = end - found.end()
    if headers.get_content_maintype() == "text":
        return data[start:min(end, found.end() + TEXT_KEPT)]
    if size < OMIT_FROM:
        return data[start:end]
    decoded = _decoded_size(data, found.end(), end, headers.get("Content-Transfer-Encoding", ""))
    line_end = b"\r\n" if head.endswith(b"\r\n\r\n") else b"\n"
    return head.rstrip(b"\r\n") + f"{line_end.decode()}{OMITTED_HEADER}: {decoded}".encode() + line_end * 2


def _multipart(data: bytes, start: int, end: int, boundary: bytes, depth: int) -> bytes:
    """The body of a multipart entity with each part cut down; the delimiter lines kept as they are."""
    pieces: list[bytes] = []
    part_start: int | None = None
    for line_start, line_end, closing in _delimiters(data, start, end, b"--" + boundary):
        if part_start is None:
            pieces.append(data[start:line_end])  # the preamble and the first delimiter
        else:
            pieces.append(_entity(data, part_start, line_start, depth + 1))
            pieces.append(data[line_start:line_end])
        part_start = line_end
        if closing:  # the rest is epilogue
            pieces.append(data[line_end:min(end, line_end + OMIT_FROM)])
            return b"".join(pieces)
    if part_start is None:  # no delimiter at all: keep the start of it for the parser to judge
        return data[start:min(end, start + TEXT_KEPT)]
    pieces.append(_entity(data, part_start, end, depth + 1))  # never closed: the last part runs to the end
    return b"".join(pieces)


def _delimiters(data: bytes, start: int, end: int, dashes: bytes):
    """(line start, line end, closing?) of each delimiter line "--boundary" or "--boundary--"; the
    newline before a delimiter belongs to it (RFC 2046), so it starts there."""
    position = start
    while (found := data.find(dashes, position, end)) >= 0:
        position = found + len(dashes)
        if found != start and data[found - 1:found] != b"\n":
            continue
        line_end = data.find(b"\n", position, end)
        line_end = end if line_end < 0 else line_end + 1
        rest = data[position:line_end].strip()
        if rest not in (b"", b"--"):
            continue  # a longer boundary that starts with this one
        newline = 2 if data[found - 2:found] == b"\r\n" else (1 if found > start else 0)
        yield found - newline, line_end, rest == b"--"
        position = line_end


def _decoded_size(data: bytes, start: int, end: int, encoding: str) -> int:
    """What the body decodes to, counted without decoding it."""
    if encoding.strip().lower() != "base64":
        return end - start
    length = end - start
    spaces = sum(data.count(space, start, end) for space in (b"\r", b"\n", b" ", b"\t"))
    tail = data[max(start, end - 8):end].rstrip()
    return max(0, (length - spaces) * 3 // 4 - tail[-2:].count(b"="))
