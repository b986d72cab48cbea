"""Key-range helpers shared by the metadata store, history and upload staging (pure).

Paths are compared as SQLite compares TEXT (memcmp of UTF-8, i.e. code point
order), so "every path under a prefix" is the half-open range
``[prefix, prefix_upper_bound(prefix))``.

A listing query's ``LIMIT`` is written into its SQL as a literal, rounded up to
a power of two (``sql_limit``; the caller keeps the rows it asked for), not
passed as a parameter.  PostgreSQL plans a prepared statement for its
parameters each time (a *custom* plan) until a *generic* plan looks as cheap;
with ``LIMIT $n`` the generic plan assumes a tenth of the table and never
does, so each of the small seeks a delimiter listing makes past a common
prefix paid a fresh plan: 0.4-1.2 ms of planning for 0.03 ms of execution
(EXPLAIN ANALYZE, a branch of 1,000,000 keys).  With the literal the sixth
execution switches to the generic plan (0.004 ms of planning).  Rounding keeps
the statements few (a dozen per query, within psycopg's cache of prepared
statements).
"""

from __future__ import annotations

__all__ = ["prefix_upper_bound", "sql_limit"]


def sql_limit(n: int) -> int:
    """The ``LIMIT`` literal for a query that needs ``n`` rows: the smallest power of
    two >= ``n`` (at least 1)."""
    return 1 << max(0, n - 1).bit_length()


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
