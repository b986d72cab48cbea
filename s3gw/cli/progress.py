"""Progress of long admin work (``gc``, ``fsck``, ``branch create --from``), on stderr.

    from .progress import track
    for cid in track(store.iter_ids(), "fsck: chunks", unit="chunk"):
        ...

``track(iterable, what, total=None, unit="item")`` yields the iterable's items and
shows how far it got:

* on a terminal, a ``tqdm`` bar (a counter and rate when ``total`` is unknown),
  removed when the loop ends;
* otherwise (a pipe, a file, CI logs), plain lines: ``<what>: <n> <unit>s[ of
  <total>] (<pct>%), <s> s`` at most every ``S3GW_PROGRESS_INTERVAL`` seconds
  (default 10), and, if it printed any, one ``<what>: <n> <unit>s in <s> s`` line
  when the loop ends -- nothing that needs a terminal to read, and nothing at
  all for work shorter than the interval.

``S3GW_PROGRESS`` chooses: ``auto`` (the default, as above), ``bar``, ``lines`` or
``off``.  Output goes to stderr, so what the commands print on stdout stays
parseable.  ``tracker(what, ...)`` gives the same as a callable for code in lower
layers that takes ``progress=`` (``pfs.gc.collect_garbage``,
``SqliteMetadata.create_branch``): they call ``progress(iterable, what, total=...)``.
"""

from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, TextIO, TypeVar

from .. import settings

__all__ = ["track", "mode"]

T = TypeVar("T")
MODES = ("auto", "bar", "lines", "off")


def mode(stream: TextIO | None = None) -> str:
    """``bar``, ``lines`` or ``off``: from ``S3GW_PROGRESS``, else whether ``stream`` is a tty."""
    stream = sys.stderr if stream is None else stream
    chosen = settings.from_env().progress       # read at each call: tests change it
    if chosen not in MODES:
        chosen = "auto"
    if chosen != "auto":
        return chosen
    try:
        return "bar" if stream.isatty() else "lines"
    except (AttributeError, ValueError):
        return "lines"


def _interval() -> float:
    try:
        return max(0.0, settings.from_env().progress_interval)
    except ValueError:
        return 10.0


def track(iterable: Iterable[T], what: str, *, total: int | None = None, unit: str = "item",
          stream: TextIO | None = None) -> Iterator[T]:
    """Yield from ``iterable``, reporting progress on ``stream`` (stderr); see the module doc."""
    stream = sys.stderr if stream is None else stream
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    how = mode(stream)
    if how == "off":
        yield from iterable
    elif how == "bar":
        from tqdm import tqdm
        with tqdm(iterable, desc=what, total=total, unit=unit, file=stream, leave=False,
                  dynamic_ncols=True) as bar:
            yield from bar
    else:
        yield from _lines(iterable, what, total, unit, stream)


def _lines(iterable: Iterable[T], what: str, total: int | None, unit: str,
           stream: TextIO) -> Iterator[T]:
    every = _interval()
    units = _plural(unit)
    start = last = time.monotonic()
    n = 0
    for item in iterable:
        yield item
        n += 1
        now = time.monotonic()
        if now - last >= every:
            last = now
            of = f" of {total} ({100 * n / total:.0f}%)" if total else ""
            _say(stream, f"{what}: {n} {units}{of}, {now - start:.1f} s")
    if last != start or every == 0:
        _say(stream, f"{what}: {n} {units} in {time.monotonic() - start:.1f} s")


def _plural(unit: str) -> str:
    if unit.endswith(("s", "x", "ch", "sh")):
        return unit + "es"
    if unit.endswith("y") and unit[-2:-1] not in ("a", "e", "o", "u"):
        return unit[:-1] + "ies"
    return unit + "s"


def _say(stream: TextIO, line: str) -> None:
    try:
        stream.write(line + "\n")
        stream.flush()
    except (OSError, ValueError):   # a closed pipe: progress is not worth failing for
        pass
