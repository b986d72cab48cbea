"""The committer's SQLite connection (``s3gw.pfs.sqlbatch.BatchDb``): the compiled
one and its pure-Python twin store and return the same values, fail the same
way, and the compiled one steps a ``run`` without the GIL."""

import os
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3gw.pfs import _sqlbatch_py, sqlbatch

try:
    from s3gw._native import sqlbatch as _native
except ImportError:  # the extension was not built: only the twin is tested
    _native = None

IMPLS = [_sqlbatch_py] + ([_native] if _native is not None else [])
native_only = pytest.mark.skipif(_native is None, reason="native sqlbatch not built")


def open_db(impl, path):
    db = impl.BatchDb(str(path), pragmas=("PRAGMA journal_mode=WAL", "PRAGMA synchronous=OFF"))
    db.run([("CREATE TABLE IF NOT EXISTS t(k INTEGER PRIMARY KEY, a, b, c)", ())])
    return db


@pytest.fixture(params=IMPLS, ids=lambda m: m.__name__.split(".")[-1])
def db(request, tmp_path):
    d = open_db(request.param, tmp_path / "x.sqlite")
    yield d
    d.close()


values = st.one_of(
    st.none(), st.integers(-(1 << 63), (1 << 63) - 1), st.floats(allow_nan=False),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",))), st.binary(max_size=300))


@native_only
@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(values, values, values), max_size=12), split=st.integers(0, 12))
def test_twin_and_native_store_and_return_the_same_values(tmp_path_factory, rows, split):
    got = []
    for impl in (_sqlbatch_py, _native):
        d = open_db(impl, tmp_path_factory.mktemp("db") / "x.sqlite")
        try:
            ops = [("INSERT INTO t(k, a, b, c) VALUES(?,?,?,?)", (i, *row))
                   for i, row in enumerate(rows)]
            d.run([("BEGIN IMMEDIATE", ())] + ops[:split])
            d.run(ops[split:] + [("COMMIT", ())])
            out = d.query("SELECT a, b, c, typeof(a), typeof(b), typeof(c) FROM t ORDER BY k", ())
            got.append([tuple(type(v).__name__ for v in r) + r for r in out])
        finally:
            d.close()
    assert got[0] == got[1]
    assert [r[6:9] for r in got[1]] == [tuple(rows[i]) for i in range(len(rows))]


def test_values_round_trip_with_their_types(db):
    row = (7, "é\u20ac", b"\x00\xff")
    db.run([("INSERT INTO t(k, a, b, c) VALUES(?,?,?,?)", (1, *row)),
            ("INSERT INTO t(k, a, b, c) VALUES(?,?,?,?)", (2, 2.5, None, b"")),
            ("INSERT INTO t(k, a, b, c) VALUES(?,?,?,?)", (3, bytearray(b"ba"), memoryview(b"mv"),
                                                            True))])
    assert db.query("SELECT a, b, c FROM t ORDER BY k", ()) == [
        row, (2.5, None, b""), (b"ba", b"mv", 1)]
    assert db.query("SELECT a FROM t WHERE k = ?", (99,)) == []


def test_a_failing_statement_stops_the_run_and_keeps_what_ran(db):
    db.run([("INSERT INTO t(k, a) VALUES(?,?)", (1, "kept"))])
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        db.run([("BEGIN IMMEDIATE", ()), ("INSERT INTO t(k, a) VALUES(?,?)", (2, "in tx")),
                ("INSERT INTO t(k, a) VALUES(?,?)", (1, "dup")),
                ("INSERT INTO t(k, a) VALUES(?,?)", (3, "never"))])
    assert db.in_transaction
    assert db.query("SELECT k FROM t ORDER BY k", ()) == [(1,), (2,)]
    db.run([("ROLLBACK", ())])
    assert not db.in_transaction
    assert db.query("SELECT k, a FROM t", ()) == [(1, "kept")]
    # the statement that failed runs again fine once reset
    db.run([("INSERT INTO t(k, a) VALUES(?,?)", (5, "ok"))])
    assert db.query("SELECT count(*) FROM t", ()) == [(2,)]


def test_errors_are_sqlite3_errors(db):
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        db.run([("INSERT INTO nope VALUES(1)", ())])
    with pytest.raises(sqlite3.OperationalError, match="syntax"):
        db.query("SELEC 1", ())
    with pytest.raises(sqlite3.ProgrammingError, match="bindings"):
        db.run([("INSERT INTO t(k, a) VALUES(?,?)", (1,))])
    with pytest.raises(sqlite3.ProgrammingError):
        db.run([("INSERT INTO t(k, a) VALUES(?,?)", (1, object()))])
    db.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        db.query("SELECT 1", ())


def test_a_second_writer_waits_for_the_busy_timeout(tmp_path):
    for impl in IMPLS:
        path = tmp_path / f"{impl.__name__}.sqlite"
        holder = open_db(impl, path)
        other = impl.BatchDb(str(path), timeout_ms=200)
        holder.run([("BEGIN IMMEDIATE", ())])
        t = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.run([("BEGIN IMMEDIATE", ())])
        assert time.monotonic() - t >= 0.15
        holder.run([("COMMIT", ())])
        other.run([("BEGIN IMMEDIATE", ()), ("COMMIT", ())])
        holder.close()
        other.close()


def test_begin_takes_a_free_lock_at_once_and_waits_for_a_held_one(tmp_path):
    """``begin`` first tries without waiting (the compiled one holding the GIL);
    when another connection holds the write lock it waits up to the busy timeout,
    and the timeout is the same afterwards."""
    for impl in IMPLS:
        path = tmp_path / f"{impl.__name__}.sqlite"
        holder = open_db(impl, path)
        other = impl.BatchDb(str(path), timeout_ms=300)
        other.begin()                                   # free: taken at once
        assert other.in_transaction
        other.run([("ROLLBACK", ())])
        holder.begin()
        t = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.begin()
        assert time.monotonic() - t >= 0.25             # it waited for the busy timeout
        assert not other.in_transaction

        def release():
            time.sleep(0.1)
            holder.run([("INSERT INTO t(k) VALUES(1)", ()), ("COMMIT", ())])

        releaser = threading.Thread(target=release)
        releaser.start()
        other.begin()                                   # waits until the holder commits
        releaser.join()
        assert other.query("SELECT k FROM t", ()) == [(1,)]
        other.run([("COMMIT", ())])
        t = time.monotonic()
        holder.begin()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.run([("BEGIN IMMEDIATE", ())])         # the busy timeout still applies
        assert time.monotonic() - t >= 0.25
        holder.run([("ROLLBACK", ())])
        holder.close()
        other.close()


@native_only
def test_native_run_gives_up_the_gil_while_it_steps(tmp_path):
    """A Python thread keeps running while ``run`` steps a long statement: the
    point of the compiled BatchDb (the twin does too, once per statement)."""
    d = open_db(_native, tmp_path / "x.sqlite")
    ticks = []
    done = threading.Event()

    def spin():
        while not done.is_set():
            ticks.append(time.perf_counter())

    worker = threading.Thread(target=spin)
    slow = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000) "
            "SELECT count(*) FROM n", ())
    worker.start()
    time.sleep(0.01)
    try:
        t0 = time.perf_counter()
        d.run([slow])
        t1 = time.perf_counter()
    finally:
        done.set()
        worker.join()
        d.close()
    inside = [t for t in ticks if t0 < t < t1]
    assert t1 - t0 > 0.05
    assert len(inside) > 1000          # the spinner ran all along, not once per switch interval


def test_dispatch_and_purepython_env(tmp_path):
    assert sqlbatch.IMPLEMENTATION in ("cython", "python")
    if _native is not None and os.environ.get("S3GW_PUREPYTHON") != "1":
        assert sqlbatch.BatchDb is _native.BatchDb
    code = ("from s3gw.pfs import sqlbatch as s; "
            "assert s.IMPLEMENTATION == 'python', s.IMPLEMENTATION; "
            "assert s.BatchDb.__module__ == 's3gw.pfs._sqlbatch_py'; print('ok')")
    out = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True,
                         text=True, check=True, env=dict(os.environ, S3GW_PUREPYTHON="1"))
    assert out.stdout.strip() == "ok"


@native_only
def test_native_is_used_only_with_the_same_sqlite_as_python(monkeypatch):
    """Two copies of SQLite in one process do not see each other's POSIX locks:
    the dispatcher takes the compiled BatchDb only when it links the SQLite that
    Python's sqlite3 uses."""
    address, version, _threadsafe = _native.library()
    assert version == sqlite3.sqlite_version
    if os.environ.get("S3GW_PUREPYTHON") != "1":
        assert sqlbatch._python_sqlite_address() == address
        assert sqlbatch._select()[1] == "cython"
    monkeypatch.setattr(sqlbatch, "_python_sqlite_address", lambda: address + 1)
    monkeypatch.delenv("S3GW_PUREPYTHON", raising=False)
    impl, name, reason = sqlbatch._select()
    assert impl is _sqlbatch_py and name == "python" and "two copies" in reason
