"""Memory per request is bounded: a multi-GiB generated PUT through a real server."""

import pytest

from tests.conftest import ServerProcess
from tests.e2e.rawhttp import PatternSource, free_disk_gib, get_md5, put_stream

MEMORY_BOUND_MIB = 100


def _stream_and_check(tmp_path, size):
    if free_disk_gib(str(tmp_path)) < size / 2**30 + 2:
        pytest.skip("not enough free disk for this size")
    srv = ServerProcess(str(tmp_path / "data")).start()
    try:
        status, _, body, _ = put_stream(srv.port, "/master.huge", 0)
        assert status == 200, body
        baseline = srv.rss_peak_kib()
        source = PatternSource(seed=7)
        status, headers, body, md5 = put_stream(srv.port, "/master.huge/blob", size, source)
        assert status == 200, body
        assert headers["etag"] == f'"{md5}"'
        peak = srv.rss_peak_kib()
        assert peak < MEMORY_BOUND_MIB * 1024, f"peak RSS {peak} KiB (baseline {baseline} KiB)"
        status, length, got_md5 = get_md5(srv.port, "/master.huge/blob")
        assert (status, length, got_md5) == (200, size, md5)
        assert srv.rss_peak_kib() < MEMORY_BOUND_MIB * 1024
        return peak
    finally:
        srv.stop()


def test_3gib_put_and_get_in_bounded_memory(tmp_path):
    _stream_and_check(tmp_path, 3 << 30)


@pytest.mark.slow
def test_10gib_put_in_bounded_memory(tmp_path):
    _stream_and_check(tmp_path, 10 << 30)
