"""Key-range helpers shared by the metadata store, history and upload staging (pure).

Paths are compared as SQLite compares TEXT (memcmp of UTF-8, i.e. code point
order), so "every path under a prefix" is the half-open range
``[prefix, prefix_upper_bound(prefix))``.
"""

from __future__ import annotations

__all__ = ["prefix_upper_bound"]


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix``."""
    # Increment the last code point; U+10FFFF has no successor, drop it and carry.
    chars = list(prefix)
    while chars:
        last = ord(chars.pop())
        if last < 0x10FFFF:
            nxt = last + 1
            if 0xD800 <= nxt <= 0xDFFF:
                nxt = 0xE000
            return "".join(chars) + chr(nxt)
    return None
