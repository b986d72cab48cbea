"""The batched access log writes what ``logging`` would, in batches, and loses nothing it accepted."""

from __future__ import annotations

import io
import logging
import threading

import pytest

from s3gw.http import accesslog

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


@pytest.fixture
def handler():
    h = logging.StreamHandler(io.StringIO())
    h.setFormatter(logging.Formatter(FORMAT))
    return h


@pytest.fixture
def access_level():
    logger = logging.getLogger("s3gw.access")
    old = logger.level
    logger.setLevel(logging.INFO)
    yield logger
    logger.setLevel(old)


def test_lines_match_the_logging_formatter(handler, access_level):
    log = accesslog.BatchedAccessLog(handler, interval=60)
    entries = [("GET", "/b/k", 200, 4096, 0.25, "5F1BD5EDA995B578", ("127.0.0.1", 5931)),
               ("PUT", "/b/a b", 403, 0, 12.0, "AA", None),
               ("HEAD", "/", 500, 0, 1234.56, "BB", "unix")]
    for e in entries:
        log(*e)
    created = [p[0] for p in log._pending]
    log.flush()
    got = handler.stream.getvalue().splitlines()
    fmt = logging.Formatter(FORMAT)
    want = []
    for (method, path, status, nbytes, ms, rid, remote), t in zip(entries, created):
        rec = logging.LogRecord("s3gw.access", logging.INFO, __file__, 1, "%s %s %d %d %.1fms %s %s",
                                (method, path, status, nbytes, ms, rid, accesslog.format_remote(remote)),
                                None)
        rec.created = t
        rec.msecs = int((t - int(t)) * 1000)
        want.append(fmt.format(rec))
    assert got == want
    assert got[0].endswith(" INFO s3gw.access GET /b/k 200 4096 0.2ms 5F1BD5EDA995B578 127.0.0.1:5931")
    assert got[1].endswith(" PUT /b/a b 403 0 12.0ms AA -")
    assert not log._pending


def test_level_is_honoured(handler, access_level):
    log = accesslog.BatchedAccessLog(handler, interval=60)
    access_level.setLevel(logging.WARNING)
    log("GET", "/", 200, 0, 1.0, "A", None)
    access_level.setLevel(logging.INFO)
    log("GET", "/x", 200, 0, 1.0, "B", None)
    log.flush()
    lines = handler.stream.getvalue().splitlines()
    assert len(lines) == 1 and " GET /x " in lines[0]


def test_bounded_pending_drops_and_counts(handler, access_level, caplog):
    log = accesslog.BatchedAccessLog(handler, interval=60, max_pending=3)
    for i in range(5):
        log("GET", f"/{i}", 200, 0, 1.0, "R", None)
    assert log.dropped == 2
    log.flush()
    assert [ln.split()[5] for ln in handler.stream.getvalue().splitlines()] == ["/0", "/1", "/2"]
    with caplog.at_level(logging.WARNING, logger="s3gw.access"):
        log.close()
    assert "2 access log lines were dropped" in caplog.text


def test_thread_writes_in_batches_and_close_writes_the_rest(handler, access_level):
    """Lines from several threads while the writer runs: each exactly once, each whole."""
    log = accesslog.BatchedAccessLog(handler, interval=0.001).start()

    def produce(t):
        for i in range(2000):
            log("GET", f"/t{t}/{i}", 200, i, 0.1, "R", None)

    producers = [threading.Thread(target=produce, args=(t,)) for t in range(4)]
    for p in producers:
        p.start()
    for p in producers:
        p.join()
    log.close()
    lines = handler.stream.getvalue().splitlines()
    assert sorted(ln.split()[5] for ln in lines) == sorted(f"/t{t}/{i}" for t in range(4) for i in range(2000))
    assert all(ln.endswith(" 0.1ms R -") for ln in lines)
    log("GET", "/late", 200, 0, 0.1, "R", None)  # after close: kept until the next flush
    log.flush()
    assert handler.stream.getvalue().splitlines()[-1].split()[5] == "/late"


def test_install_swaps_the_sink_and_back(caplog):
    seen = []
    accesslog.install(lambda *a: seen.append(a))
    try:
        accesslog.record("GET", "/", 200, 0, 1.0, "A", None)
    finally:
        accesslog.install(None)
    assert seen == [("GET", "/", 200, 0, 1.0, "A", None)]
    with caplog.at_level(logging.INFO, logger="s3gw.access"):
        accesslog.record("GET", "/y", 200, 0, 1.0, "B", ("h", 1))
    assert [r.getMessage() for r in caplog.records] == ["GET /y 200 0 1.0ms B h:1"]
