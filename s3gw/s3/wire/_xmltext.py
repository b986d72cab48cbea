"""Escaping text for S3 XML documents (shared by errors.py and xml.py).

Theory of operation
-------------------
``xml_text(s)`` escapes ``&``, ``<``, ``>`` and ``"`` (S3 writes ETags as
``&quot;…&quot;``) with entity references, and every character XML 1.0 cannot
carry literally with a numeric character reference:

* ``\\r`` becomes ``&#13;`` so that it survives a parser's line-end
  normalisation (a literal CR would come back as LF); ``\\t`` and ``\\n`` stay
  literal (parsers keep them in element text).
* Other C0 controls, U+FFFE/U+FFFF and (unpaired) surrogates become
  ``&#xN;``.  Such a reference is *not* well-formed XML 1.0 -- this is what
  S3 itself sends, and AWS's documented remedy is ``encoding-type=url``,
  which every SDK that lists arbitrary keys uses.  We chose this over
  dropping or replacing the character because the listing then stays
  one-to-one with the stored keys (a replaced key would name a different
  object) and lenient parsers recover the exact key.
"""

from __future__ import annotations

__all__ = ["xml_text"]

_TABLE: dict[int, str] = {
    ord("&"): "&amp;",
    ord("<"): "&lt;",
    ord(">"): "&gt;",
    ord('"'): "&quot;",
    ord("\r"): "&#13;",
}
for _c in range(0x20):
    if _c not in (0x09, 0x0A, 0x0D):
        _TABLE[_c] = f"&#x{_c:X};"
for _c in (0xFFFE, 0xFFFF, *range(0xD800, 0xE000)):
    _TABLE[_c] = f"&#x{_c:X};"
del _c


def xml_text(s: str) -> str:
    """Escape *s* for use as XML element text (see the module docstring)."""
    return s.translate(_TABLE)
