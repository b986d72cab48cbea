"""Conditional and ranged reads, conditional writes.

The matrix of ``s3.wire.conditions`` case by case against RFC 9110 13.2.2 and
the S3 GetObject/HeadObject/PutObject documentation; then the same through
the real handler in process (``S3Service`` on a real ``SqliteMetadata`` and
``LocalChunkStore``, driven over ``serve_connection`` on an in-memory stream,
no mocks): 304 without a body, 412, If-Range, ``response-*`` overrides, a
ranged read touching only the chunks it overlaps (chunk reads counted), and
conditional writes decided inside the commit transaction under a race.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time

import pytest
import trio

from s3gw.pfs.metadata import SqliteMetadata
from s3gw.pfs.model import ConditionFailed, MetadataBusy, NoSuchFile, ObjectInfo, Put
from s3gw.s3.wire import conditions
from s3gw.s3.wire.dates import http_date
from s3gw.s3.wire.errors import S3Error
from s3gw.s3.service import S3Service
from s3gw.store.chunkstore import LocalChunkStore
from s3gw.store.manifest import Manifest
from tests.http.http_testlib import request, start

ETAG = "9a0364b9e99bb480dd25e1f0284c8555"
T = 1_700_000_000_500_000_000          # Last-Modified: 1_700_000_000 s (sub-second dropped)
BEFORE = http_date(T - 10 * 10**9)
SAME = http_date(T)
AFTER = http_date(T + 10 * 10**9)


class H(dict):
    def get(self, name, default=None):
        return super().get(name.lower(), default)


# (headers, expected) -- None: 200 (proceed)
MATRIX = [
    ({}, None),
    # If-Match: strong comparison, quoted or not, lists, *
    ({"if-match": f'"{ETAG}"'}, None),
    ({"if-match": ETAG}, None),                                   # Spark: unquoted
    ({"if-match": f'"other", "{ETAG}"'}, None),
    ({"if-match": "*"}, None),
    ({"if-match": '"other"'}, 412),
    ({"if-match": f'W/"{ETAG}"'}, 412),                          # weak never matches strongly
    ({"if-match": ""}, 412),
    # If-Unmodified-Since alone
    ({"if-unmodified-since": AFTER}, None),
    ({"if-unmodified-since": SAME}, None),                       # one-second resolution
    ({"if-unmodified-since": BEFORE}, 412),
    ({"if-unmodified-since": "not a date"}, None),               # invalid: ignored
    # If-Match decides over If-Unmodified-Since (S3: true + false -> 200)
    ({"if-match": ETAG, "if-unmodified-since": BEFORE}, None),
    ({"if-match": '"other"', "if-unmodified-since": AFTER}, 412),
    # If-None-Match: weak comparison
    ({"if-none-match": f'"{ETAG}"'}, 304),
    ({"if-none-match": ETAG}, 304),
    ({"if-none-match": f'W/"{ETAG}"'}, 304),
    ({"if-none-match": "*"}, 304),
    ({"if-none-match": '"other"'}, None),
    # If-Modified-Since alone
    ({"if-modified-since": BEFORE}, None),
    ({"if-modified-since": SAME}, 304),
    ({"if-modified-since": AFTER}, 304),
    ({"if-modified-since": "garbage"}, None),
    # If-None-Match decides over If-Modified-Since (S3: false + true -> 304)
    ({"if-none-match": ETAG, "if-modified-since": BEFORE}, 304),
    ({"if-none-match": '"other"', "if-modified-since": AFTER}, None),
    # 412 comes before 304
    ({"if-match": '"other"', "if-none-match": ETAG}, 412),
    ({"if-unmodified-since": BEFORE, "if-modified-since": AFTER}, 412),
    ({"if-match": ETAG, "if-none-match": ETAG}, 304),
    ({"if-match": ETAG, "if-modified-since": AFTER}, 304),
    ({"if-unmodified-since": AFTER, "if-none-match": '"x"', "if-modified-since": AFTER}, None),
]


@pytest.mark.parametrize("headers,expected", MATRIX, ids=[repr(h) for h, _ in MATRIX])
def test_read_precondition_matrix(headers, expected):
    assert conditions.evaluate_read(H(headers), ETAG, T) == expected


@pytest.mark.parametrize("value,holds", [
    (None, True), (f'"{ETAG}"', True), (ETAG, True), ('"other"', False),
    (f'W/"{ETAG}"', False), (SAME, True), (BEFORE, False), (AFTER, False),
])
def test_if_range(value, holds):
    h = H({} if value is None else {"if-range": value})
    assert conditions.if_range_holds(h, ETAG, T) is holds


def _current(etag):
    return None if etag is None else type("F", (), {"object": ObjectInfo(1, etag, b"")})()


@pytest.mark.parametrize("headers,current,error", [
    ({"if-none-match": "*"}, None, None),
    ({"if-none-match": "*"}, "e1", ConditionFailed),
    ({"if-match": '"e1"'}, "e1", None),
    ({"if-match": "e1"}, "e1", None),
    ({"if-match": '"e2"'}, "e1", ConditionFailed),
    ({"if-match": '"e1"'}, None, NoSuchFile),            # S3: 404 NoSuchKey when absent
    ({"if-match": "*"}, "e1", None),
    ({"if-match": "*"}, None, NoSuchFile),
])
def test_write_condition(headers, current, error):
    cond = conditions.write_condition(H(headers))
    if error is None:
        cond("k", _current(current))
    else:
        with pytest.raises(error):
            cond("k", _current(current))


def test_write_condition_absent_and_unsupported():
    assert conditions.write_condition(H({})) is None
    with pytest.raises(S3Error) as e:
        conditions.write_condition(H({"if-none-match": '"e1"'}))
    assert e.value.code == "NotImplemented"


def test_conditional_commits_race_in_the_transaction(tmp_path):
    """Many threads commit ``If-None-Match: *`` for one key at once: exactly one wins."""
    meta = SqliteMetadata(str(tmp_path / "m.sqlite"), durable=False)
    meta.create_branch("r", "master", 0)
    cond = conditions.write_condition(H({"if-none-match": "*"}))
    results, barrier = [], threading.Barrier(12)

    def one(i):
        barrier.wait()
        try:
            meta.commit("r", "master", [Put("k", ObjectInfo(1, f"e{i}", b""))], "m", i, cond)
            results.append("ok")
        except ConditionFailed:
            results.append("412")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["412"] * 11 + ["ok"]
    assert len(meta.versions("r", "master").versions) == 1
    meta.close()


# -- through the handler, in process ---------------------------------------------------------
class CountingStore(LocalChunkStore):
    """The real chunk store, counting chunk reads."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.reads = []

    def read_into(self, ref, buf, offset=0, length=None):
        self.reads.append(ref.id)
        return super().read_into(ref, buf, offset, length)


@pytest.fixture
def service(tmp_path):
    meta = SqliteMetadata(str(tmp_path / "meta.sqlite"), durable=False)
    store = CountingStore(str(tmp_path), fsync=False)
    svc = S3Service(meta, store)
    yield svc
    meta.close()


async def call(svc, method, target, headers=(), body=b""):
    async with trio.open_nursery() as nursery:
        client = start(nursery, svc.handle)
        await client.send(request(method, target, list(headers) + [("Connection", "close")],
                                  body))
        status, head, data = await client.response(method)
        nursery.cancel_scope.cancel()
    return status, head, data


DATA = random.Random(5).randbytes(6 * 1024 * 1024)


async def _put_big(svc):
    assert (await call(svc, "PUT", "/master.r"))[0] == 200
    status, head, _ = await call(svc, "PUT", "/master.r/big", [("Content-Type", "x/y")], DATA)
    assert status == 200
    return head


async def test_ranged_read_touches_only_overlapping_chunks(service):
    await _put_big(service)
    manifest = Manifest.unpack(service.meta.stat("r", "master", "big").object.manifest)
    assert len(manifest) >= 3, "the object must span several chunks"
    ends = manifest.ends
    for first, last in [(0, 0), (ends[0] - 1, ends[0]), (ends[1] + 5, ends[1] + 100),
                        (len(DATA) - 10, len(DATA) - 1)]:
        service.store.reads.clear()
        status, head, data = await call(service, "GET", "/master.r/big",
                                        [("Range", f"bytes={first}-{last}")])
        assert status == 206 and data == DATA[first:last + 1]
        touched = {c.id for c, _, _ in manifest.plan(first, last + 1)}
        assert set(service.store.reads) == touched and len(service.store.reads) == len(touched)
    service.store.reads.clear()
    status, _, data = await call(service, "GET", "/master.r/big", [("Range", "bytes=-1")])
    assert data == DATA[-1:] and service.store.reads == [manifest.chunks[-1].id]


async def test_304_has_no_body_and_412_is_s3_xml(service):
    head = await _put_big(service)
    etag = head["etag"]
    service.store.reads.clear()
    status, h, data = await call(service, "GET", "/master.r/big", [("If-None-Match", etag)])
    assert status == 304 and data == b"" and h["etag"] == etag
    assert "last-modified" in h and h.get("content-length", "0") == "0"
    assert service.store.reads == []
    status, h, data = await call(service, "GET", "/master.r/big",
                                 [("If-Match", '"00000000000000000000000000000000"')])
    assert status == 412 and b"<Code>PreconditionFailed</Code>" in data
    assert b"<Condition>If-Match</Condition>" in data
    status, h, data = await call(service, "HEAD", "/master.r/big", [("If-Match", '"nope"')])
    assert status == 412 and data == b""
    # If-Match on a ranged part (s3transfer) holds on the whole object
    status, h, data = await call(service, "GET", "/master.r/big",
                                 [("If-Match", etag), ("Range", "bytes=10-19")])
    assert status == 206 and data == DATA[10:20]
    # If-Range with a stale validator: the whole object, 200
    status, h, data = await call(service, "GET", "/master.r/big",
                                 [("If-Range", '"stale"'), ("Range", "bytes=10-19")])
    assert status == 200 and len(data) == len(DATA)


async def test_response_overrides(service):
    await _put_big(service)
    q = ("response-content-type=text%2Fplain&response-content-disposition=attachment%3B%20f%3Da"
         "&response-cache-control=no-cache&response-content-language=fr"
         "&response-expires=Thu%2C%2001%20Dec%202033%2016%3A00%3A00%20GMT"
         "&response-content-encoding=identity")
    status, h, _ = await call(service, "HEAD", f"/master.r/big?{q}")
    assert status == 200
    assert h["content-type"] == "text/plain" and h["content-disposition"] == "attachment; f=a"
    assert h["cache-control"] == "no-cache" and h["content-language"] == "fr"
    assert h["expires"] == "Thu, 01 Dec 2033 16:00:00 GMT" and h["content-encoding"] == "identity"
    status, h, _ = await call(service, "HEAD", "/master.r/big")
    assert h["content-type"] == "x/y"


async def test_conditional_put_through_the_handler(service):
    assert (await call(service, "PUT", "/master.r"))[0] == 200
    s, h1, _ = await call(service, "PUT", "/master.r/k", [("If-None-Match", "*")], b"one")
    assert s == 200 and h1["etag"] == f'"{hashlib.md5(b"one").hexdigest()}"'
    s, _, body = await call(service, "PUT", "/master.r/k", [("If-None-Match", "*")], b"two")
    assert s == 412 and b"PreconditionFailed" in body
    s, _, body = await call(service, "PUT", "/master.r/absent", [("If-Match", h1["etag"])], b"x")
    assert s == 404 and b"NoSuchKey" in body
    s, h2, _ = await call(service, "PUT", "/master.r/k", [("If-Match", h1["etag"])], b"two")
    assert s == 200 and h2["x-amz-version-id"] != h1["x-amz-version-id"]
    s, _, _ = await call(service, "PUT", "/master.r/k", [("If-Match", h1["etag"])], b"three")
    assert s == 412
    s, h, data = await call(service, "GET", f"/master.r/k?versionId={h1['x-amz-version-id']}")
    assert s == 200 and data == b"one"


# -- small GETs on the event loop, and the back-off from a slow lookup ----------------------
class SlowMetadata(SqliteMetadata):
    """The real metadata store; ``stat`` notes its thread and can be made slow."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.delay = 0.0
        self.threads = []

    def stat(self, repo, branch, path):
        self.threads.append(threading.current_thread() is threading.main_thread())
        time.sleep(self.delay)
        return super().stat(repo, branch, path)

    def stat_nowait(self, repo, branch, path):
        if self.busy:
            raise MetadataBusy("database is locked")
        self.threads.append(threading.current_thread() is threading.main_thread())
        time.sleep(self.delay)
        return super().stat_nowait(repo, branch, path)

    busy = False


async def test_small_get_on_the_event_loop_until_a_lookup_is_slow(tmp_path, monkeypatch):
    from s3gw.s3 import context as service_mod

    # the slow lookups below sleep 2 x INLINE_SLOW; a busy machine may stretch one past
    # INLINE_SEVERE, which backs off at once: keep that out of this test's way
    monkeypatch.setattr(service_mod, "INLINE_SEVERE", 0.2)

    meta = SlowMetadata(str(tmp_path / "meta.sqlite"), durable=False)
    svc = S3Service(meta, CountingStore(str(tmp_path), fsync=False))
    try:
        assert (await call(svc, "PUT", "/master.r"))[0] == 200
        assert (await call(svc, "PUT", "/master.r/k", body=b"abc"))[0] == 200
        assert (await call(svc, "GET", "/master.r/k"))[::2] == (200, b"abc")
        assert meta.threads == [True]            # looked up on the event loop's thread
        assert svc.store.reads == []             # and read from the page cache there
        meta.delay = service_mod.INLINE_SLOW * 2
        for _ in range(service_mod.INLINE_STRIKES - 1):
            assert (await call(svc, "GET", "/master.r/k"))[::2] == (200, b"abc")
            assert svc.inline_reads_now()        # one slow lookup (a preemption?): not yet
        assert (await call(svc, "GET", "/master.r/k"))[::2] == (200, b"abc")
        assert not svc.inline_reads_now()        # slow again and again: back off
        assert meta.threads == [True] * (1 + service_mod.INLINE_STRIKES)
        meta.delay = 0
        assert (await call(svc, "HEAD", "/master.r/k"))[0] == 200
        assert (await call(svc, "GET", "/master.r/k?versionId=HEAD"))[::2] == (200, b"abc")
        # the HEAD went to a worker (the versionId GET does no stat)
        assert meta.threads[service_mod.INLINE_STRIKES:] == [True, False]
        svc._inline_after = 0.0                  # the back-off is over
        assert (await call(svc, "GET", "/master.r/k"))[::2] == (200, b"abc")
        assert meta.threads[-1] is True
        meta.delay = service_mod.INLINE_SEVERE * 1.5   # one very slow lookup backs off at once
        assert (await call(svc, "GET", "/master.r/k"))[::2] == (200, b"abc")
        assert not svc.inline_reads_now()
        meta.delay = 0
        svc._inline_after = 0.0
        meta.busy = True                         # a locked database: a worker thread waits
        assert (await call(svc, "GET", "/master.r/k"))[::2] == (200, b"abc")
        assert meta.threads[-1] is False
        assert (await call(svc, "GET", "/master.r/nope"))[0] == 404
        meta.busy = False
        assert (await call(svc, "GET", "/master.r/nope"))[0] == 404
        assert (await call(svc, "GET", "/master.gone/k"))[0] == 404
    finally:
        meta.close()


async def test_small_puts_batched_each_answered_and_failing_alone(tmp_path):
    """Concurrent small PUTs are committed in batches by one writer thread; in the
    same batches a bad Content-MD5, a failed If-None-Match and a missing bucket
    fail alone with their own errors, and exactly the good ones are committed."""
    import base64

    meta = SqliteMetadata(str(tmp_path / "meta.sqlite"), durable=False)
    svc = S3Service(meta, CountingStore(str(tmp_path), fsync=False))
    try:
        assert (await call(svc, "PUT", "/master.r"))[0] == 200
        assert (await call(svc, "PUT", "/master.r/taken", body=b"first"))[0] == 200
        results = {}

        async def put(i):
            body = f"object {i}".encode()
            headers, target = [], f"/master.r/k{i}"
            kind = ("good", "bad-md5", "taken", "no-bucket")[i % 4]
            if kind == "bad-md5":
                headers.append(("Content-MD5", base64.b64encode(b"\0" * 16).decode()))
            elif kind == "taken":
                headers.append(("If-None-Match", "*"))
                target = "/master.r/taken"
            elif kind == "no-bucket":
                target = f"/master.missing/k{i}"
            status, _, data = await call(svc, "PUT", target, headers, body)
            results[i] = (kind, status, data)

        async with trio.open_nursery() as nursery:
            for i in range(40):
                nursery.start_soon(put, i)
        expect = {"good": (200, None), "bad-md5": (400, b"<Code>BadDigest</Code>"),
                  "taken": (412, b"<Code>PreconditionFailed</Code>"),
                  "no-bucket": (404, b"<Code>NoSuchBucket</Code>")}
        for i, (kind, status, data) in results.items():
            want_status, want_code = expect[kind]
            assert status == want_status, (i, kind, data)
            assert want_code is None or want_code in data, (i, kind, data)
        assert len(results) == 40
        files = {f.path for f in meta.list_files("r", "master")}
        assert files == {"taken"} | {f"k{i}" for i in range(0, 40, 4)}
        assert (await call(svc, "GET", "/master.r/taken"))[2] == b"first"
        for i in range(0, 40, 4):
            assert (await call(svc, "GET", f"/master.r/k{i}"))[2] == f"object {i}".encode()
        writer = svc.small_puts
        # every PUT is queued (inline objects are hashed and checked on the committer)
        assert writer.jobs == 41 and writer.commits < writer.jobs   # batched, not one by one
    finally:
        meta.close()


class SlowFirstCommit(SqliteMetadata):
    """Its first ``commit_many`` takes a while: later batches queue up behind it."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.calls = []

    def commit_many(self, requests):
        self.calls.append([r[3] for r in requests])   # the commit messages, "PUT /<key>"
        if len(self.calls) == 1:
            time.sleep(0.3)
        return super().commit_many(requests)


@pytest.mark.parametrize("repeat", [1, 5000], ids=["inline", "staged"])
async def test_small_put_batches_commit_in_staging_order_and_merge_when_behind(tmp_path, repeat):
    """The stager and the committer are a pipeline: batches staged while an earlier
    one commits wait, are committed together in one transaction, and in the order
    they were staged (the last PUT of a key is its current version).  Objects kept
    in their commits skip the stager, in the same order."""
    meta = SlowFirstCommit(str(tmp_path / "meta.sqlite"), durable=False)
    svc = S3Service(meta, CountingStore(str(tmp_path), fsync=False))
    try:
        assert (await call(svc, "PUT", "/master.r"))[0] == 200
        meta.calls.clear()
        statuses = []

        async def put(i):
            statuses.append((await call(svc, "PUT", "/master.r/same",
                                        body=f"v{i}".encode() * repeat))[0])

        async with trio.open_nursery() as nursery:
            nursery.start_soon(put, 0)
            for i in range(1, 8):
                await trio.sleep(0.02)     # each one staged in a batch of its own
                nursery.start_soon(put, i)
        assert statuses == [200] * 8
        writer = svc.small_puts
        assert writer.jobs == 8 and writer.batches == (8 if repeat > 1 else 0)
        assert writer.commits < writer.jobs, (writer.commits, meta.calls)
        assert meta.calls[0] == ["PUT /same"] and len(meta.calls[1]) > 1   # merged behind the slow one
        assert (await call(svc, "GET", "/master.r/same"))[2] == b"v7" * repeat
        history = [v.object.etag for v in meta.versions("r", "master", "same").versions]
        assert history == [hashlib.md5(f"v{i}".encode() * repeat).hexdigest()
                           for i in reversed(range(8))]
    finally:
        meta.close()


class HintingStore(CountingStore):
    """Also records the chunks the GET read-ahead asks the kernel to prefetch."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.events = []

    def prefetch(self, refs):
        self.events.extend(("hint", r.id) for r in refs)
        super().prefetch(refs)

    def read_into(self, ref, buf, offset=0, length=None):
        self.events.append(("read", ref.id))
        return super().read_into(ref, buf, offset, length)


async def test_a_long_get_hints_each_chunk_once_before_reading_it(tmp_path):
    meta = SqliteMetadata(str(tmp_path / "meta.sqlite"), durable=False)
    store = HintingStore(str(tmp_path), fsync=False)
    svc = S3Service(meta, store)
    try:
        body = random.Random(9).randbytes(40 * 1024 * 1024)
        assert (await call(svc, "PUT", "/master.r"))[0] == 200
        assert (await call(svc, "PUT", "/master.r/long", [], body))[0] == 200
        manifest = Manifest.unpack(meta.stat("r", "master", "long").object.manifest)
        store.events.clear()
        status, _, data = await call(svc, "GET", "/master.r/long")
        assert status == 200 and data == body
        hints = [cid for kind, cid in store.events if kind == "hint"]
        reads = [cid for kind, cid in store.events if kind == "read"]
        assert reads == [c.id for c in manifest.chunks]
        assert len(hints) == len(set(hints))                     # each hinted once
        first_piece = set()
        for c in manifest.chunks:                                # the first piece is read, not hinted
            if c.id in hints:
                break
            first_piece.add(c.id)
        assert set(hints) == {c.id for c in manifest.chunks} - first_piece
        for cid in hints:                                        # always before its read
            assert store.events.index(("hint", cid)) < store.events.index(("read", cid))
    finally:
        meta.close()


def test_on_demand_thread_keeps_serving_after_a_failed_unit(caplog):
    """A unit of work that raises (a bug) is logged; the thread goes on with the queue."""
    from s3gw.ingest.smallputs import _OnDemandThread

    done = []
    finished = threading.Event()

    def work(unit):
        if unit == [1]:
            raise RuntimeError("boom")
        done.extend(unit)
        if 3 in unit:
            finished.set()

    t = _OnDemandThread("test-worker", work, lambda items: [items.pop(0)], idle_exit=0.2)
    t.put([1])
    t.put([2, 3])
    assert finished.wait(10)
    assert done == [2, 3]
    assert "test-worker failed" in caplog.text and "boom" in caplog.text
