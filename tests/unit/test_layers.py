"""Imports point downwards only (DESIGN.md, docs/architecture.md "Layers"); no import cycles;
the pure parts of the S3 layer are pure through their whole import chain.

The rule, checked on every ``s3gw`` import of every module (module level or inside a
function: a lazy import is still an edge):

* ``ALLOWED``: which layers a layer may import.  A layer is the first package under
  ``s3gw`` (``s3gw/app.py`` is ``app``; ``s3gw/__main__.py`` belongs to ``cli``).
* ``NAMED_EDGES``: the only imports across layers that ``ALLOWED`` does not grant, each
  with its reason.  Nothing else crosses.
* ``S3_PARTS``: inside ``s3``, ``wire`` (codecs) imports only ``wire``, ``auth`` (signature
  schemes) only ``auth`` and ``wire``; the shell (``s3/*.py``) and ``ops`` use them.
* Purity is derived from the folder layout: every module under ``s3/wire/`` and
  ``s3/auth/``, and every ``s3gw`` module it imports, directly or not (with the packages
  Python runs on the way), imports none of ``IO_MODULES`` and reads no clock.
* The import graph of ``s3gw`` modules has no cycle.
* ``CONCRETE_BACKENDS``: ``s3``, ``pps`` and ``ingest`` depend on the store interfaces
  (``pfs.interface.MetadataStore``, ``pfs.interface.AuthStore``,
  ``store.chunkstore.ChunkStore``, ``pps.interface.PipelineStore``) only: they
  import no concrete backend module or class (the backend modules themselves
  excepted: ``pps.pgstore`` builds on ``pfs.postgres``); ``app`` and ``cli`` wire
  the concrete ones.  ``AUTH_BACKENDS``: the console and ``observe`` import no
  auth backend either.
* ``PPS_BACKENDS``: the pipeline stores are named only by the wiring (``app``,
  ``cli`` but ``cli/pipelines.py``, which opens one through ``pps.backends``) and by
  each other: the runner, executor, console, ``observe`` and ``s3`` take a
  ``PipelineStore``.
"""

from __future__ import annotations

import ast
import functools
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2] / "s3gw"

# layer -> layers it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "settings": set(),       # every S3GW_* variable (s3gw/settings.py): a leaf anyone may read
    "_native": set(),
    "store": {"_native"},
    "ingest": {"store", "_native"},
    "pfs": {"store", "_native"},
    "pps": {"pfs", "store", "ingest", "_native"},
    "http": set(),
    # s3 talks to pfs (names, commits), drives the ingest pipeline (bytes in), serves
    # pipelines' per-job views (pps), and is served by http
    "s3": {"pps", "pfs", "ingest", "http"},
    "console": {"pps", "pfs", "store", "http", "_native"},
    # operators' endpoints (health, readiness, metrics): served by http, reading pfs, pps
    # and store gauges; app puts them in front of the S3 service
    "observe": {"http", "pfs", "pps", "store", "_native"},
    "app": {"s3", "observe", "console", "pps", "pfs", "store", "ingest", "http", "_native"},
    "cli": {"app", "s3", "pps", "pfs", "store", "ingest", "http", "_native", "__init__"},
}

for _layer, _allowed in ALLOWED.items():
    if _layer != "settings":
        _allowed.add("settings")

# (importing layer, imported module) -> why.  The read path of s3.ops reads chunks
# through the chunk store handle the service is given; these are the store modules it
# names to do so.  Writes go through ingest.
NAMED_EDGES: dict[tuple[str, str], str] = {
    ("s3", "s3gw.store.manifest"): "a file's content is a Manifest: GET plans its range "
                                   "over the chunks, copies and Complete build new ones",
    ("s3", "s3gw.store.chunkstore"): "the chunk store handle's type, and ChunkError, answered "
                                     "InternalError with its own log line",
    ("s3", "s3gw.store.hashing"): "UploadPartCopy hashes the bytes of a copied range with "
                                  "the hashing driver the ingest pipeline uses",
    ("s3", "s3gw.store.piecepool"): "GET reads chunk runs into the store's pooled buffers",
}

# the metadata and chunk backends: (module, or (module, name) imported from it)
# the pipeline stores (pps.backends opens one of them for the wiring)
PPS_BACKENDS = {"s3gw.pps.store", "s3gw.pps.pgstore", "s3gw.pps.sqlstore", "s3gw.pps.backends"}
CONCRETE_BACKENDS = {"s3gw.pfs.metadata", "s3gw.pfs.postgres", "s3gw.pfs.sqlbatch",
                     "s3gw.pfs.backends", "s3gw.pfs.auth", "s3gw.pfs.postgres_auth",
                     ("s3gw.store.chunkstore", "LocalChunkStore")} | PPS_BACKENDS
INTERFACE_ONLY = ("s3", "pps", "ingest")
# the auth backends: the console and the operators' endpoints take a
# ``pfs.interface.AuthStore`` too (their values come from ``pfs.roles``)
AUTH_BACKENDS = {"s3gw.pfs.auth", "s3gw.pfs.postgres_auth"}
AUTH_INTERFACE_ONLY = ("s3", "pps", "ingest", "console", "observe")
# outside app and the backends: who may open a pipeline store by name (through
# pps.backends, not a concrete one)
PPS_OPENERS = {"s3gw.cli.pipelines", "s3gw.cli.metastore", "s3gw.cli.migrate_pps"}

# inside s3: part -> parts it may import (besides itself)
S3_PARTS: dict[str, set[str]] = {
    "wire": set(),
    "auth": {"wire"},
    "ops": {"wire", "auth", "shell"},
    "shell": {"wire", "auth", "ops"},
}

PURE_PACKAGES = ("s3gw.s3.wire", "s3gw.s3.auth")
IO_MODULES = {"trio", "socket", "os", "threading", "sqlite3", "subprocess", "asyncio",
              "shutil", "tempfile", "select", "selectors", "mmap"}
CLOCKS = ("time.time(", "time_ns(", "datetime.now(", "datetime.utcnow(", "monotonic(",
          "perf_counter(", "date.today(")


def _module_of(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, pathlib.Path] = {_module_of(p): p for p in ROOT.rglob("*.py")}


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


@functools.cache
def _imports(module: str) -> tuple[tuple[str, int], ...]:
    """Every import in ``module``: (imported module, line); s3gw targets resolved to
    the module (``from .wire import xml_out`` -> ``s3gw.s3.wire.xml_out``)."""
    path = MODULES[module]
    package = module if _is_package(module) else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES]
            out.extend((s, node.lineno) for s in subs)
            if len(subs) < len(node.names):
                out.append((target, node.lineno))
    return tuple(out)


def _internal(module: str) -> list[tuple[str, int]]:
    return [(t, n) for t, n in _imports(module) if t == "s3gw" or t.startswith("s3gw.")]


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__"
    return "cli" if parts[1] == "__main__" else parts[1]


def _s3_part(module: str) -> str:
    parts = module.split(".")
    return parts[2] if len(parts) > 3 and parts[2] in ("wire", "auth", "ops") else (
        "ops" if parts[2:3] == ["ops"] else "shell")


def test_imports_point_downwards():
    bad = []
    for module in MODULES:
        layer = _layer(module)
        if layer == "__init__":
            assert not _internal(module), "s3gw/__init__.py imports nothing of s3gw"
            continue
        assert layer in ALLOWED, f"{module}: layer {layer!r} is not in ALLOWED"
        for target, line in _internal(module):
            other = _layer(target)
            if other == layer or other in ALLOWED[layer] or (layer, target) in NAMED_EDGES:
                continue
            bad.append(f"{MODULES[module].relative_to(ROOT)}:{line} imports {target}")
    assert not bad, "\n".join(bad)


def test_named_edges_are_used():
    used = {(_layer(m), t) for m in MODULES for t, _ in _internal(m)}
    assert set(NAMED_EDGES) <= used, set(NAMED_EDGES) - used   # stale exceptions go


def test_s3_parts_point_inwards():
    bad = []
    for module in MODULES:
        if not module.startswith("s3gw.s3.") or module == "s3gw.s3":
            continue
        part = _s3_part(module)
        for target, line in _internal(module):
            if not target.startswith("s3gw.s3.") or target == "s3gw.s3":
                continue
            other = _s3_part(target)
            if other != part and other not in S3_PARTS[part]:
                bad.append(f"{MODULES[module].relative_to(ROOT)}:{line} ({part}) imports "
                           f"{target} ({other})")
    assert not bad, "\n".join(bad)


def _with_packages(module: str) -> list[str]:
    """``module`` and the packages Python imports before it."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in MODULES]


def _closure(module: str) -> set[str]:
    seen: set[str] = set()
    todo = _with_packages(module)
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        for target, _ in _internal(m):
            if target in MODULES:
                todo.extend(_with_packages(target))
    return seen


def test_pure_modules_do_no_io_through_their_whole_import_chain():
    pure = [m for m in MODULES if m.startswith(PURE_PACKAGES)]
    assert len(pure) > 15, pure        # the layout still holds the pure parts
    bad = []
    for module in pure:
        for m in sorted(_closure(module)):
            for target, line in _imports(m):
                if target.split(".")[0] in IO_MODULES:
                    bad.append(f"{module}: {m}:{line} imports {target}")
            source = MODULES[m].read_text()
            bad.extend(f"{module}: {m} reads a clock ({c})" for c in CLOCKS if c in source)
    assert not bad, "\n".join(sorted(set(bad)))   # pass ``now`` in instead


def test_no_import_cycles():
    graph = {m: sorted({t for t, _ in _internal(m) if t in MODULES and t != m}) for m in MODULES}
    # Tarjan's strongly connected components
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, "\n".join(" <-> ".join(c) for c in cycles)


def _imported_names(module: str) -> set[tuple[str, str]]:
    """(module, name) of every ``from module import name`` in ``module``."""
    path = MODULES[module]
    package = module if _is_package(module) else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.update((target, a.name) for a in node.names)
    return out


def test_s3_and_pps_depend_on_store_interfaces_only():
    bad = []
    for module in MODULES:
        if _layer(module) not in INTERFACE_ONLY or module in CONCRETE_BACKENDS:
            continue
        for target, line in _internal(module):
            if target in CONCRETE_BACKENDS:
                bad.append(f"{MODULES[module].relative_to(ROOT)}:{line} imports {target}")
        for pair in _imported_names(module) & CONCRETE_BACKENDS:
            bad.append(f"{MODULES[module].relative_to(ROOT)} imports {pair[1]} from {pair[0]}")
    assert not bad, "\n".join(bad)


def test_auth_store_users_depend_on_the_auth_interface_only():
    bad = [f"{MODULES[module].relative_to(ROOT)}:{line} imports {target}"
           for module in MODULES if _layer(module) in AUTH_INTERFACE_ONLY
           for target, line in _internal(module) if target in AUTH_BACKENDS]
    assert not bad, "\n".join(bad)


def test_pipeline_stores_are_named_only_by_the_wiring():
    """The runner, executor, console, observe, s3 and the pipeline commands take a
    ``pps.interface.PipelineStore``; only app, the backends themselves and the commands
    that open a store by the folder's metadata (through ``pps.backends``) name one."""
    assert PPS_BACKENDS <= set(MODULES), PPS_BACKENDS - set(MODULES)
    bad = []
    for module in MODULES:
        if module in PPS_BACKENDS or _layer(module) == "app":
            continue
        for target, line in _internal(module):
            if target not in PPS_BACKENDS:
                continue
            if module in PPS_OPENERS and target == "s3gw.pps.backends":
                continue
            if module == "s3gw.cli.migrate_pps":
                continue              # copies between the two stores by name, on purpose
            bad.append(f"{MODULES[module].relative_to(ROOT)}:{line} imports {target}")
    assert not bad, "\n".join(bad)
