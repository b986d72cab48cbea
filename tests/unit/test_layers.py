"""Imports point downwards only (DESIGN.md, STYLE.md): cli -> app -> s3 -> pfs -> store -> _native."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2] / "s3gw"

# layer -> layers it may import (besides itself)
ALLOWED = {
    "_native": set(),
    "store": {"_native"},
    "ingest": {"store", "_native"},
    "pfs": {"store", "_native"},
    "pps": {"pfs", "store", "_native"},
    "http": set(),
    "s3": {"pps", "pfs", "store", "ingest", "http", "_native"},
    "console": {"pps", "pfs", "store", "http", "_native"},
    "app": {"s3", "pps", "pfs", "store", "ingest", "http", "_native", "console"},
    "cli": {"app", "s3", "pps", "pfs", "store", "ingest", "http", "_native", "__init__"},
}
PURE_S3 = {"errors", "xml", "xmlparse", "router", "endpoints", "names", "ranges", "awschunked",
           "dates", "metadata", "_xmltext", "auth", "sigv4", "sigv4_stream", "sigv2"}


def layer_of(path: pathlib.Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 or rel.stem == "app" else rel.stem


def imported_layers(path: pathlib.Path):
    tree = ast.parse(path.read_text())
    package = path.relative_to(ROOT.parent).with_suffix("").parts[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - node.level + 1])
                mod = base + (node.module.split(".") if node.module else [])
            else:
                mod = node.module.split(".")
            if mod and mod[0] == "s3gw":
                yield (mod[1] if len(mod) > 1 else "__init__"), node
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "s3gw" and len(parts) > 1:
                    yield parts[1], node


def test_imports_point_downwards():
    bad = []
    for path in ROOT.rglob("*.py"):
        layer = layer_of(path)
        if layer in ("__init__", "__main__"):
            continue
        for target, node in imported_layers(path):
            if target != layer and target not in ALLOWED.get(layer, set()):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno} imports s3gw.{target}")
    assert not bad, "\n".join(bad)


def test_pure_s3_modules_do_no_io():
    for name in PURE_S3:
        tree = ast.parse((ROOT / "s3" / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                for m in mods:
                    assert m.split(".")[0] not in ("trio", "socket", "os", "threading"), (name, m)
        source = (ROOT / "s3" / f"{name}.py").read_text()
        for clock in ("time.time(", "time_ns(", "datetime.now(", "monotonic("):
            assert clock not in source, (name, clock)  # pass ``now`` in instead
