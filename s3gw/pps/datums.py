"""Datums: how a job's inputs are cut into runs of the transform (pure).

Theory of operation
-------------------
A *datum* is one run of the user's code.  Each ``pfs`` input contributes a
list of *pieces*:

* an S3 input is one piece: the whole repo at the job's input commit, served
  as a bucket (glob ``/`` is enforced by the spec);
* a non-S3 input with glob ``/`` is one piece: every file of the commit;
* a non-S3 input with a deeper glob (``/*``, ``/*/*``, ``/data/*.csv``) has
  one piece per match: the glob's components are matched component by
  component (``fnmatch`` rules: ``*``, ``?``, ``[...]``; ``*`` never crosses a
  ``/``) against each file's leading path components, and every file under a
  match belongs to that piece.  No match, no piece: such an input gives the
  job no datum at all (as in Pachyderm, the job then succeeds with an empty
  output).

A ``cross`` is the cartesian product of its children's pieces, so a cross of
S3 inputs (one piece each) with a globbed input gives one datum per glob
match, each with the S3 inputs whole -- Pachyderm's behaviour.
"""

from __future__ import annotations

import fnmatch
import itertools
from dataclasses import dataclass

from .spec import CrossInput, PfsInput

__all__ = ["Piece", "Datum", "glob_pieces", "plan_datums"]


@dataclass(frozen=True)
class Piece:
    """One input's share of a datum: the files (paths) it materialises, or whole."""

    input: str                 # the input's name
    match: str                 # "/" or the matched path ("/a", "/a/b.csv")
    paths: tuple[str, ...]     # file paths (no leading "/") that belong to it; () for S3


@dataclass(frozen=True)
class Datum:
    pieces: tuple[Piece, ...]

    @property
    def id(self) -> str:
        return " ".join(f"{p.input}:{p.match}" for p in self.pieces)


def _components(glob: str) -> list[str]:
    return [c for c in glob.strip("/").split("/") if c]


def glob_pieces(name: str, glob: str, paths: list[str]) -> list[Piece]:
    """The pieces of one non-S3 input: ``paths`` are the commit's file paths."""
    parts = _components(glob)
    if not parts:
        return [Piece(name, "/", tuple(paths))]
    groups: dict[str, list[str]] = {}
    for path in paths:
        comps = path.split("/")
        if len(comps) < len(parts):
            continue
        if all(fnmatch.fnmatchcase(c, p) for c, p in zip(comps, parts)):
            groups.setdefault("/" + "/".join(comps[:len(parts)]), []).append(path)
    return [Piece(name, match, tuple(files)) for match, files in sorted(groups.items())]


def plan_datums(node: PfsInput | CrossInput, files_of) -> list[Datum]:
    """The datums of an input tree.

    Args:
        node: the spec's input.
        files_of: ``files_of(input) -> list of file paths`` at the job's input
            commit, called only for non-S3 inputs.
    """
    if isinstance(node, PfsInput):
        if node.s3:
            return [Datum((Piece(node.name, "/", ()),))]
        return [Datum((p,)) for p in glob_pieces(node.name, node.glob, files_of(node))]
    children = [plan_datums(child, files_of) for child in node.inputs]
    return [Datum(tuple(p for d in combo for p in d.pieces))
            for combo in itertools.product(*children)]
