"""Fixtures of the real-client compatibility suite (see tests/compat/test_clients.py)."""

from __future__ import annotations

import pytest

from tests.compat.clients import CLIENTS
from tests.compat.recorder import merge_results


@pytest.fixture(scope="session")
def compat_rows():
    """Result rows of this session; merged into tests/compat/results/results.json at the end."""
    rows: list[dict] = []
    yield rows
    merge_results(rows)


def _slug(name: str) -> str:
    return name.replace(" ", "").replace("-", "")


@pytest.fixture(params=list(CLIENTS), ids=[_slug(n) for n in CLIENTS])
def client(request, server, tmp_path):
    c = CLIENTS[request.param](server, tmp_path / "client")
    c.slug = _slug(c.name)
    yield c
    c.close()
