"""Escaping text for S3 XML documents (shared by errors.py and xml.py).

Theory of operation
-------------------
``xml_text(s)`` escapes ``&``, ``<``, ``>`` and ``"`` (S3 writes ETags as
``&quot;…&quot;``) with entity references, and every character XML 1.0 cannot
carry literally with a numeric character reference:

* ``\\r`` becomes ``&#13;`` so that it survives a parser's line-end
  normalisation (a literal CR would come back as LF); ``\\t`` and ``\\n`` stay
  literal (parsers keep them in element text).
* Other C0 controls, U+FFFE/U+FFFF and (unpaired) surrogates cannot appear
  in XML 1.0 at all, not even as ``&#xN;`` references: they become U+FFFD
  (the replacement character), so every document s3gw writes is well-formed
  (issue 23: ``<Key>a&#x7;b</Key>``, what S3 itself sends, made boto3 fail a
  CreateMultipartUpload and leave an orphan upload).  A listing stays exact
  with ``encoding-type=url`` (AWS's documented remedy, and what boto3, the
  aws cli and rclone ask for): there such a key is percent-encoded, never
  replaced.  Elsewhere (a key echoed in an upload, copy, delete or error
  document) the client already knows the key it sent.
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
        _TABLE[_c] = "\ufffd"
for _c in (0xFFFE, 0xFFFF, *range(0xD800, 0xE000)):
    _TABLE[_c] = "\ufffd"
del _c


def xml_text(s: str) -> str:
    """Escape *s* for use as XML element text (see the module docstring)."""
    return s.translate(_TABLE)
