"""The sanitizer + fuzz run of the native code (slow: it compiles; see tests/native/sanitize.py)."""

import shutil
import subprocess
import sys

import pytest


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc with ASan/UBSan runtimes")
def test_native_code_under_asan_ubsan_matches_twin():
    proc = subprocess.run([sys.executable, "-m", "tests.native.sanitize", "--seconds", "30"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "no sanitizer report" in proc.stdout
