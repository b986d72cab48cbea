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


@pytest.mark.slow   # ~70 s: `pytest -m slow` runs it
def test_3gib_put_and_get_in_bounded_memory(tmp_path):
    _stream_and_check(tmp_path, 3 << 30)


@pytest.mark.slow
def test_10gib_put_in_bounded_memory(tmp_path):
    _stream_and_check(tmp_path, 10 << 30)


def test_parallel_ranged_gets_leave_little_behind(tmp_path):
    """boto3 download_file (ten threads of 8 MiB ranged GETs) and a GET cut off
    mid-body, then a 1 GiB PUT on the same server: every download is intact,
    the GETs' buffers are not kept resident after them (the server keeps two
    warm 4 MiB piece buffers at most), and the PUT stays under the bound."""
    import hashlib
    import socket

    from boto3.s3.transfer import TransferConfig

    from tests.conftest import make_client

    srv = ServerProcess(str(tmp_path / "data")).start()
    try:
        s3 = make_client(srv.endpoint)
        s3.create_bucket(Bucket="master.ranged")
        status, _, body, md5 = put_stream(srv.port, "/master.ranged/src", 256 << 20, PatternSource(seed=3))
        assert status == 200, body
        before = srv.rss_now_kib()
        config = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20, max_concurrency=10)
        for i in range(2):
            # a GET the client abandons after its first bytes: its read-ahead buffer
            # must not go back into the pool while a read still writes into it
            with socket.create_connection(("127.0.0.1", srv.port)) as sock:
                sock.sendall(b"GET /master.ranged/src HTTP/1.1\r\nHost: x\r\n\r\n")
                assert sock.recv(65536)
            out = tmp_path / f"down{i}.bin"
            s3.download_file("master.ranged", "src", str(out), Config=config)
            h = hashlib.md5()
            with open(out, "rb") as f:
                while block := f.read(1 << 20):
                    h.update(block)
            assert h.hexdigest() == md5
            out.unlink()
        retained = srv.rss_now_kib() - before
        assert retained < 24 * 1024, f"{retained} KiB still resident after the GETs"
        srv.reset_rss_peak()
        status, headers, body, md5 = put_stream(srv.port, "/master.ranged/big", 1 << 30, PatternSource(seed=4))
        assert status == 200, body
        peak = srv.rss_peak_kib()
        assert peak < MEMORY_BOUND_MIB * 1024, f"peak RSS {peak} KiB after the ranged GETs"
    finally:
        srv.stop()
