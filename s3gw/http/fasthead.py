"""The common request, parsed without h11's state machine; anything else goes to h11.

Theory of operation
-------------------
Most requests an S3 server sees are small and plain: an HTTP/1.1 head with a
``Host``, no ``Transfer-Encoding``, no ``Expect``, no ``Connection`` header,
and a body of ``Content-Length`` bytes (often none) that arrived with the head.
For such a request h11's per-request work (its receive buffer, the event
objects, the state machine, the body reader, the response writer) was ~60 us of
a 4 KiB PUT's ~250 us on the event loop (a third of it building the Request
event), more than the parsing itself needs.

``parse(buf, max_head)`` recognises exactly that shape at the start of ``buf``
and returns a ``SimpleHead`` with the request and its whole body, or None.
It applies *h11's own grammar* (the request-line and header-field regular
expressions of ``h11._abnf``, compiled as h11 compiles them, matched against
whole lines) and h11's checks for that shape (exactly one ``Host``, one
all-digit ``Content-Length`` at most), so every head it accepts is one h11
accepts, with the same method, target, lowercased names and stripped values.
A head with ``Expect: 100-continue`` (exactly that, once: what boto3 and the
aws cli send with every PUT) is accepted too when none of its body has arrived
yet: the connection then reads the body after sending ``100 Continue``
(``body.ContinueState``).  Whatever it does not accept -- a head split over
reads, a longer body, any other of the headers above, HTTP/1.0, obsolete line
folding, bare LF line ends, a malformed line, ``CONNECT`` or ``Upgrade`` -- the
connection hands to h11 unchanged, which answers it as before (including its
errors).  If h11's
private grammar module ever moves, ``AVAILABLE`` is False and every request
goes to h11.

Sans-IO: bytes in, values out.  ``tests/http/test_fasthead.py`` checks it
against h11 on generated heads.
"""

from __future__ import annotations

import re

__all__ = ["AVAILABLE", "SimpleHead", "parse"]

try:  # h11's grammar, so both parsers accept the same lines
    from h11._abnf import header_field as _HEADER_FIELD_ABNF
    from h11._abnf import request_line as _REQUEST_LINE_ABNF
    _REQUEST_LINE = re.compile(_REQUEST_LINE_ABNF.encode("ascii"))
    _HEADER_FIELD = re.compile(_HEADER_FIELD_ABNF.encode("ascii"))
    AVAILABLE = True
except (ImportError, AttributeError):  # pragma: no cover - another h11
    AVAILABLE = False

_DIGITS = re.compile(rb"[0-9]{1,18}")
# one scan for the fields that send a head to h11: cheaper than matching the lines
# before finding one
_NOT_SIMPLE_FIELD = re.compile(rb"\n(?i:transfer-encoding|connection|upgrade)[ \t]*:")
# headers that make a request something else than the plain shape: h11 handles them
_NOT_SIMPLE = frozenset((b"transfer-encoding", b"connection", b"upgrade"))


class SimpleHead:
    """One plain request: ``method``, ``target`` (bytes, as h11 gives them),
    ``headers`` (``(lowercase name, value)`` bytes pairs in wire order),
    ``body`` (bytes, ``length`` of them) and ``end`` (offset in the buffer just
    past the body: where the next request starts).  ``expect``: the client sent
    ``Expect: 100-continue`` and waits for it; ``body`` is then empty (none of it
    has arrived) and ``end`` is the end of the head."""

    __slots__ = ("method", "target", "headers", "length", "body", "end", "expect")

    def __init__(self, method: bytes, target: bytes, headers: list, length: int,
                 body: bytes, end: int, expect: bool = False) -> None:
        self.method, self.target, self.headers = method, target, headers
        self.length, self.body, self.end, self.expect = length, body, end, expect


def parse(buf: bytes, max_head: int) -> SimpleHead | None:
    """The plain request at the start of ``buf`` with its whole body, or None
    (not that shape, or not all there yet: give the bytes to h11)."""
    if not AVAILABLE:
        return None
    blank = buf.find(b"\r\n\r\n")
    if blank < 0 or blank + 4 > max_head:
        return None
    if _NOT_SIMPLE_FIELD.search(buf, 0, blank) is not None:
        return None
    lines = buf[:blank].split(b"\r\n")
    m = _REQUEST_LINE.fullmatch(lines[0])
    if m is None or m.group("http_version") != b"1.1":
        return None
    method = m.group("method")
    if method == b"CONNECT":
        return None
    headers = []
    hosts = 0
    length = None
    expect = False
    match = _HEADER_FIELD.fullmatch
    for line in lines[1:]:
        f = match(line)
        if f is None:
            return None
        name = f.group("field_name").lower()
        value = f.group("field_value")
        if name in _NOT_SIMPLE:
            return None
        if name == b"host":
            hosts += 1
        elif name == b"expect":
            if expect or value.lower() != b"100-continue":
                return None
            expect = True
        elif name == b"content-length":
            if length is not None or _DIGITS.fullmatch(value) is None:
                return None
            length = int(value)
        headers.append((name, value))
    if hosts != 1:
        return None
    start = blank + 4
    if expect:   # the client waits for 100 Continue: no byte of its body may be here yet
        if not length or start != len(buf):
            return None
        return SimpleHead(method, m.group("target"), headers, length, b"", start, True)
    end = start + (length or 0)
    if end > len(buf):
        return None
    return SimpleHead(method, m.group("target"), headers, length or 0, buf[start:end], end)
