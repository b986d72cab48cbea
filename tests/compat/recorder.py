"""Result rows of the compatibility scenarios, and the JSON file they are merged into.

Each operation of a client scenario runs inside ``rec.step(op)``: the step records
pass/fail (with the reason) and does not stop the scenario, so one failing operation
shows up as one failing cell of the matrix instead of hiding every later one. The
test fails at the end if any step failed (``rec.finish()``).

Rows are merged into ``tests/compat/results/results.json`` keyed by
(client, version, operation): a default run and a ``-m slow`` run fill different rows
of the same file, and ``make_matrix.py`` turns the file into docs/compatibility.md.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

RESULTS_DIR = Path(__file__).parent / "results"
RESULTS_FILE = RESULTS_DIR / "results.json"
LAST_RUN_FILE = RESULTS_DIR / "last-run.json"     # this session's rows only (write_last_run)
REPO_ROOT = Path(__file__).resolve().parents[2]

PASS, FAIL, NA, UNSUPPORTED = "pass", "fail", "n/a", "unsupported"


def short_reason(exc: BaseException, limit: int = 400) -> str:
    text = f"{type(exc).__name__}: {exc}" if not isinstance(exc, AssertionError) else str(exc)
    text = " ".join(line.strip() for line in text.strip().splitlines() if line.strip())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Step:
    """What a step may add to its row: ``note`` (shown in the matrix, pass or fail), and
    ``seconds`` when the operation ran elsewhere (a script that reports its own times)."""

    def __init__(self):
        self.note = ""
        self.seconds: float | None = None


class Recorder:
    """Records the steps of one client scenario."""

    def __init__(self, client: str, version: str, nodeid: str, sink: list):
        self.client, self.version, self.nodeid = client, version, nodeid
        self.sink = sink
        self.failures: list[tuple[str, str]] = []

    def _row(self, op: str, status: str, reason: str = "", seconds: float = 0.0,
             note: str = "") -> None:
        self.sink.append({
            "client": self.client, "version": self.version, "operation": op,
            "status": status, "reason": reason, "note": note, "seconds": round(seconds, 2),
            "test": self.nodeid,
            "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        })

    @contextlib.contextmanager
    def step(self, op: str):
        """Run one operation; record pass, or fail with the reason, and carry on."""
        t0 = time.monotonic()
        step = Step()
        try:
            yield step
        except (KeyboardInterrupt, pytest.exit.Exception):
            raise
        except BaseException as exc:  # noqa: BLE001 - every failure is a result row
            if isinstance(exc, pytest.skip.Exception):
                self._row(op, NA, str(exc.msg), time.monotonic() - t0)
                return
            reason = short_reason(exc)
            self.failures.append((op, f"{type(exc).__name__}: {exc}"))
            self._row(op, FAIL, reason, _took(step, t0), step.note)
        else:
            self._row(op, PASS, "", _took(step, t0), step.note)

    def not_applicable(self, op: str, reason: str) -> None:
        """The client has no such operation (e.g. no ``sync`` in boto3)."""
        self._row(op, NA, reason)

    def unsupported(self, op: str, reason: str) -> None:
        """A client behaviour s3gw cannot support; the reason says why."""
        self._row(op, UNSUPPORTED, reason)

    def finish(self) -> None:
        if self.failures:
            details = "\n\n".join(f"--- {op}\n{why[:4000]}" for op, why in self.failures)
            pytest.fail(f"{self.client} {self.version}: {len(self.failures)} operation(s) failed: "
                        f"{', '.join(op for op, _ in self.failures)}\n\n{details}", pytrace=False)


def _took(step: Step, t0: float) -> float:
    return step.seconds if step.seconds is not None else time.monotonic() - t0


def s3gw_revision() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO_ROOT, capture_output=True, text=True,
                               timeout=10).stdout.strip()
        return rev + ("+dirty" if dirty else "") if rev else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def merge_results(rows: list[dict], path: Path = RESULTS_FILE) -> None:
    """Merge this session's rows into the results file (later rows win)."""
    if not rows:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    entries = {(r["client"], r["version"], r["operation"]): r for r in data.get("rows", [])}
    revision = s3gw_revision()
    for row in rows:
        row = dict(row, s3gw=revision)
        entries[(row["client"], row["version"], row["operation"])] = row
    data = {"rows": sorted(entries.values(),
                           key=lambda r: (r["client"], r["version"], r["operation"]))}
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(path)


def write_last_run(rows: list[dict], path: Path = LAST_RUN_FILE) -> None:
    """Replace the last-run file with this session's rows: what this run tested, with
    the client versions it actually ran (``make_matrix --versions`` reads it)."""
    if not rows:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    revision = s3gw_revision()
    data = {"rows": [dict(row, s3gw=revision) for row in rows]}
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(path)


def tested_versions(rows: list[dict]) -> list[str]:
    """``"<client> <version>"`` of every client the rows ran, in a stable order."""
    return sorted({f"{r['client']} {r['version']}" for r in rows if r["status"] != NA})
