"""tests/compat/make_matrix.py --versions: the versions a run tested against the doc's columns."""

from __future__ import annotations

from tests.compat.make_matrix import DOC, doc_columns, render, version_report


def _row(client, version, op="put", status="pass"):
    return {"client": client, "version": version, "operation": op, "status": status,
            "reason": "", "note": "", "seconds": 0.1, "when": "2026-01-01T00:00:00+00:00"}


def test_doc_columns_read_back_what_render_wrote():
    rows = [_row("boto3", "1.2 (s3transfer 0.1)"), _row("pyarrow", "26.0.1", "write Parquet")]
    assert doc_columns(render(rows)) == ["boto3 1.2 (s3transfer 0.1)", "pyarrow 26.0.1"]
    assert doc_columns(DOC.read_text())          # the committed doc parses


def test_version_report_names_untested_columns():
    doc = render([_row("boto3", "1.2"), _row("s3cmd", "2.4.0")])
    report = version_report([_row("boto3", "1.3"), _row("s3cmd", "2.4.0")], doc)
    assert "  boto3 1.3" in report and "  s3cmd 2.4.0" in report
    assert report[-1] == "  boto3 1.2" and "did not test" in report[-2]
    assert version_report([_row("boto3", "1.2"), _row("s3cmd", "2.4.0")], doc)[-1].endswith(
        "names only versions this run tested")
    assert "  boto3 1.2" not in version_report([_row("boto3", "1.2", status="n/a")], None)
