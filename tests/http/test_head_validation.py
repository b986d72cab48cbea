"""The response head's fast header check agrees with h11's own validation."""

from __future__ import annotations

import random

import h11
import pytest

from s3gw.http.connection import _headers_valid


def _h11_accepts(raw) -> bool:
    try:
        h11.Response(status_code=200, headers=raw)
    except h11.LocalProtocolError:
        return False
    return True


@pytest.mark.parametrize("raw", [
    [(b"etag", b'"abc"'), (b"x-amz-meta-k", b"")],
    [(b"a b", b"c")], [(b"", b"c")], [(b"a:", b"x")], [(b"a\n", b"x")],
    [(b"a", b" c")], [(b"a", b"c ")], [(b"a", b"\tx")], [(b"a", b"c\r\nx: y")],
    [(b"a", b"c\x00")], [(b"a", b"\xff\x80 ok\tok")], [(b"a", b"x\x7f")],
    [(b"a", b"x"), (b"", b"y")], [(b"a", b"x"), (b"b", b"\n")], [],
])
def test_known_cases(raw):
    assert _headers_valid(raw) == _h11_accepts(raw)


def test_random_heads_agree_with_h11():
    rnd = random.Random(7)
    alphabet = b"ab \t\n\r\x00\x0b\x0c\x01\x7f\x80:-_"
    for _ in range(20000):
        raw = [(bytes(rnd.choice(alphabet) for _ in range(rnd.randint(0, 3))),
                bytes(rnd.choice(alphabet) for _ in range(rnd.randint(0, 4))))
               for _ in range(rnd.randint(1, 3))]
        assert _headers_valid(raw) == _h11_accepts(raw), raw
