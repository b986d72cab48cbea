"""GET pieces: runs of whole chunks grouped up to 4 MiB; partial chunks alone (pure)."""

from __future__ import annotations

from s3gw.s3.ops.get import _PIECE, _group
from s3gw.store.manifest import ChunkRef, Manifest

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


def test_piece_pool_reuses_and_shrinks_when_idle():
    import mmap

    from s3gw.store.piecepool import PiecePool

    pool = PiecePool(4 * MiB + 1, keep_busy=3, keep_idle=1)
    a = pool.take(2, 3 * MiB)
    assert all(isinstance(b, mmap.mmap) and len(b) >= 3 * MiB for b in a)
    b = pool.take(2, 4 * MiB + 1)
    assert pool.created == 4 and pool.leases == 2
    pool.give_back(a)                   # a lease is still open: keep (up to keep_busy)
    assert pool.idle == 2
    c = pool.take(2, MiB)
    assert pool.created == 4 and {id(x) for x in c} == {id(x) for x in a}  # warm reuse
    pool.give_back(c)
    pool.give_back(b)                   # the last lease: shrink to keep_idle
    assert pool.leases == 0 and pool.idle == 1


def test_piece_pool_plain_buffers_outside_its_range():
    from s3gw.store.piecepool import PiecePool

    pool = PiecePool(4 * MiB + 1)
    small = pool.take(2, 1000)          # below min_pooled: heap
    big = pool.take(1, 5 * MiB)         # bigger than the pool's buffers
    assert [type(x) for x in small + big] == [bytearray] * 3
    assert len(big[0]) == 5 * MiB
    pool.give_back(small)
    pool.give_back(big)
    assert pool.idle == 0 and pool.created == 0 and pool.leases == 0


def test_piece_pool_keeps_buffers_a_read_still_writes_out():
    from s3gw.store.piecepool import PiecePool

    pool = PiecePool(4 * MiB + 1, keep_idle=4)
    bufs = pool.take(2, 2 * MiB)
    pool.give_back(bufs[:1])            # the caller leaves out the one still being read into
    again = pool.take(2, 2 * MiB)
    assert again[0] is bufs[0] and again[1] is not bufs[1]


def test_piece_pool_keeps_two_idle_buffers_per_running_get():
    from s3gw.store.piecepool import PiecePool

    pool = PiecePool(4 * MiB + 1, keep_busy=16, keep_idle=2)
    slow = pool.take(2, 3 * MiB)                      # one slow download stays open
    burst = [pool.take(2, 3 * MiB) for _ in range(8)]  # a burst of parallel GETs
    for lease in burst:
        pool.give_back(lease)
    assert pool.leases == 1 and pool.idle == 2        # not 16: the burst is over
    pool.give_back(slow)
    assert pool.idle == 2
