"""Build the Cython extensions with AddressSanitizer + UndefinedBehaviorSanitizer and fuzz them.

Run: ``python -m tests.native.sanitize [--seconds N]`` (not part of the pytest run: it
compiles, and ASan needs its runtime preloaded).  STYLE rule 12: the native code gets
a sanitizer run and a fuzz run over its buffer edges.

What it does:

1. cythonizes ``_native/*.pyx`` and compiles each with
   ``-fsanitize=address,undefined -fno-sanitize-recover=undefined -O1 -g``
   into a temporary folder (the installed extension is not touched);
2. re-runs itself in a child process with ``LD_PRELOAD`` = the compiler's
   libasan + libubsan, importing the sanitized modules from that folder;
3. the child drives every native entry point against its pure-Python twin
   (``s3gw.store._chunker_py``, ``s3gw.store._hashing_py``,
   ``s3gw.pfs._sqlbatch_py``) on seeded
   random data cut at the awkward places: empty feeds, 1-byte feeds, splits
   right at ``min_size`` / ``max_size`` / every cut point, ``start`` offsets
   at the buffer end, memoryviews of bytearrays, zero-length chunks; any
   difference, or any sanitizer report (the process aborts), fails the run.

Exit status 0 means: no sanitizer report and identical results.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import pathlib
import random
import subprocess
import sys
import sysconfig
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODULES = ("chunker", "hashing", "sqlbatch")
LIBS = {"sqlbatch": ["-lsqlite3"]}
FLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
         "-fno-omit-frame-pointer", "-O1", "-g"]


def build(out: pathlib.Path) -> None:
    from Cython.Build import cythonize
    include = sysconfig.get_paths()["include"]
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    for name in MODULES:
        pyx = out / f"{name}.pyx"
        pyx.write_bytes((ROOT / "_native" / f"{name}.pyx").read_bytes())
        cythonize([str(pyx)], language_level=3, quiet=True, compiler_directives={
            "boundscheck": False, "wraparound": False, "cdivision": True})
        subprocess.run(["gcc", "-shared", "-fPIC", *FLAGS, f"-I{include}", str(out / f"{name}.c"),
                        *LIBS.get(name, []), "-o", str(out / f"{name}{suffix}")], check=True)


def _load(folder: str, name: str):
    path = glob.glob(os.path.join(folder, f"{name}.*.so"))[0]
    spec = importlib.util.spec_from_file_location(name, path)   # PyInit_<name>
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cuts(scanner, pieces) -> list[int]:
    """Feed *pieces* (a list of buffers) through *scanner*; absolute cut offsets."""
    out, base = [], 0
    for piece in pieces:
        start = 0
        while True:
            cut = scanner.scan(piece, start)
            if cut < 0:
                break
            out.append(base + cut)
            start = cut
        base += len(piece)
    return out


def _splits(rng: random.Random, data: bytes, marks: list[int]) -> list[list]:
    """Ways to cut *data* into feed buffers, with the awkward edges included."""
    n = len(data)
    ways = [[data], [data[i:i + 1] for i in range(min(n, 4096))] + [data[4096:]]]
    points = sorted({p for m in marks for p in (m - 1, m, m + 1) if 0 < p < n})
    ways.append([data[a:b] for a, b in zip([0, *points], [*points, n])])
    for _ in range(3):
        cuts = sorted(rng.sample(range(1, n), min(n - 1, rng.randint(1, 64)))) if n > 1 else []
        pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, n])]
        pieces.insert(rng.randint(0, len(pieces)), b"")            # empty feeds
        ways.append([memoryview(bytearray(p)) if rng.random() < 0.5 else p for p in pieces])
    return ways


def fuzz(folder: str, seconds: float) -> int:
    import ctypes
    process = ctypes.CDLL(None)
    for symbol in ("__asan_init", "__ubsan_handle_add_overflow"):
        if not hasattr(process, symbol):  # the runtimes were not preloaded: no real check
            print(f"sanitizer runtime missing ({symbol})")
            return 2
    sys.path.insert(0, str(ROOT))
    from s3gw.pfs import _sqlbatch_py
    from s3gw.store import _chunker_py, _hashing_py
    native_chunker, native_hashing = _load(folder, "chunker"), _load(folder, "hashing")
    native_sqlbatch = _load(folder, "sqlbatch")
    tmp = tempfile.mkdtemp(prefix="s3gw-asan-db-")
    assert native_chunker.gear_table() == tuple(_chunker_py.gear_table())
    rng = random.Random(20261126)
    params = [(256, 1024, 4096), (1024, 4096, 16384), (64 * 1024, 256 * 1024, 1024 * 1024)]
    deadline = time.monotonic() + seconds
    rounds = 0
    while time.monotonic() < deadline:
        mn, avg, mx = rng.choice(params)
        size = rng.choice([0, 1, mn - 1, mn, mn + 1, mx - 1, mx, mx + 1, rng.randint(0, 6 * mx)])
        kind = rng.random()
        if kind < 0.2:
            data = bytes(size)                                     # no cut: max_size rule
        elif kind < 0.3:
            data = bytes([rng.randrange(256)]) * size
        else:
            data = rng.randbytes(size)
        ref = _chunker_py.Scanner(mn, avg, mx)
        want = _cuts(ref, [data])
        for pieces in _splits(rng, data, want + [mn, mx]):
            scanner = native_chunker.Scanner(mn, avg, mx)
            got = _cuts(scanner, pieces)
            if got != want:
                print(f"MISMATCH chunker {mn}/{avg}/{mx} size={size}: {got[:8]} != {want[:8]}")
                return 1
            scanner.reset()
            if _cuts(scanner, [data]) != want:
                print("MISMATCH after reset")
                return 1
        end_scan = native_chunker.Scanner(mn, avg, mx).scan(data, len(data))
        if end_scan != -1:
            print(f"MISMATCH scan at end of buffer returned {end_scan}")
            return 1
        # hashing: per chunk and per stream, in random pieces
        bounds = [0, *want, len(data)]
        for a, b in zip(bounds, bounds[1:]):
            chunk = memoryview(data)[a:b]
            if native_hashing.chunk_id(chunk) != _hashing_py.chunk_id(chunk) or \
                    native_hashing.chunk_checksum(chunk) != _hashing_py.chunk_checksum(chunk):
                print(f"MISMATCH chunk hashes at {a}:{b}")
                return 1
        # small inputs, where chunk_id and md5 feed pieces under 2 KiB (HOLD_MAX)
        for size in (0, 1, 2047, 2048, rng.randint(2, 2 * native_hashing.HOLD_MAX)):
            small = memoryview(data)[:size]
            if native_hashing.chunk_id(small) != _hashing_py.chunk_id(small) or \
                    native_hashing.md5(small) != _hashing_py.md5(small):
                print(f"MISMATCH small hashes of {len(small)} bytes")
                return 1
        algorithms = rng.sample(sorted(native_hashing.ALGORITHMS), rng.randint(1, 3))
        h_native = native_hashing.StreamHasher(algorithms)
        h_ref = _hashing_py.StreamHasher(algorithms)
        for piece in _splits(rng, data, want)[-1]:
            h_native.update(piece)
            h_ref.update(piece)
        if h_native.digests() != h_ref.digests():
            print(f"MISMATCH stream hashes {algorithms}")
            return 1
        if _sqlbatch_round(rng, native_sqlbatch, _sqlbatch_py, tmp):
            return 1
        rounds += 1
    print(f"sanitized fuzz: {rounds} rounds in {seconds:.0f} s, no sanitizer report, "
          "native == twin")
    return 0


def _sqlbatch_round(rng: random.Random, native, twin, folder: str) -> bool:
    """One random ``run`` list (values of every type, a duplicate key now and then)
    through both BatchDbs; True on a difference in the rows or the error."""
    def value():
        kind = rng.randrange(6)
        return [None, rng.randint(-(1 << 63), (1 << 63) - 1), rng.uniform(-1e300, 1e300),
                rng.randbytes(rng.randint(0, 70)).decode("latin-1"),
                rng.randbytes(rng.choice([0, 1, 4095, 4096, rng.randint(0, 9000)])),
                bytearray(rng.randbytes(rng.randint(0, 40)))][kind]
    keys = [rng.randint(0, 40) for _ in range(rng.randint(0, 30))]
    ops = [("INSERT INTO t VALUES(?,?,?)", (k, value(), value())) for k in keys]
    out = []
    for impl in (native, twin):
        path = os.path.join(folder, f"{impl.__name__}.sqlite")
        for f in (path, path + "-wal", path + "-shm"):
            if os.path.exists(f):
                os.unlink(f)
        db = impl.BatchDb(path, pragmas=("PRAGMA synchronous=OFF",))
        try:
            db.run([("CREATE TABLE t(k INTEGER PRIMARY KEY, a, b)", ()), ("BEGIN", ())])
            try:
                db.run(ops + [("COMMIT", ())])
                error = None
            except Exception as exc:  # noqa: BLE001 - compared between the two
                error = (type(exc).__name__, str(exc))
                db.run([("ROLLBACK", ())])
            out.append((error, db.query("SELECT * FROM t ORDER BY k", ()), db.in_transaction))
        finally:
            db.close()
    if out[0] != out[1]:
        print(f"MISMATCH sqlbatch: {str(out[0])[:200]} != {str(out[1])[:200]}")
        return True
    return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return fuzz(args.child, args.seconds)
    with tempfile.TemporaryDirectory(prefix="s3gw-asan-") as tmp:
        build(pathlib.Path(tmp))
        preload = [subprocess.run(["gcc", f"-print-file-name={lib}"], capture_output=True,
                                  text=True, check=True).stdout.strip()
                   for lib in ("libasan.so", "libubsan.so")]
        env = dict(os.environ, LD_PRELOAD=":".join(preload),
                   ASAN_OPTIONS="detect_leaks=0:abort_on_error=1",
                   UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
        return subprocess.run([sys.executable, "-m", "tests.native.sanitize", "--child", tmp,
                               "--seconds", str(args.seconds)], cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
