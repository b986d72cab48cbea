"""GET pieces: runs of whole chunks grouped up to 4 MiB; partial chunks alone (pure)."""

from __future__ import annotations

from s3gw.s3.ops.objects import _PIECE, _group
from s3gw.store.ids import ChunkRef, Manifest

MiB = 1 << 20


def _manifest(lengths):
    return Manifest([ChunkRef(bytes([i]) * 32, i, n) for i, n in enumerate(lengths)])


def test_whole_chunks_grouped_up_to_piece_size():
    m = _manifest([MiB, MiB, MiB, MiB, MiB, 3 * MiB, 4 * MiB, 10])
    groups = _group(m.plan(0, m.size))
    assert [sum(n for _, _, n in g) for g in groups] == [4 * MiB, 4 * MiB, 4 * MiB, 10]
    assert [len(g) for g in groups] == [4, 2, 1, 1]
    assert all(sum(n for _, _, n in g) <= _PIECE for g in groups)
    flat = [item for g in groups for item in g]
    assert flat == m.plan(0, m.size)


def test_partial_chunks_are_pieces_of_their_own():
    m = _manifest([MiB, MiB, MiB, MiB])
    plan = m.plan(10, 4 * MiB - 10)
    groups = _group(plan)
    assert [len(g) for g in groups] == [1, 2, 1]
    assert groups[0][0][1] == 10 and groups[-1][0][2] == MiB - 10
    assert [item for g in groups for item in g] == plan
    assert _group(m.plan(5, 6)) == [[m.plan(5, 6)[0]]]
    assert _group([]) == []
