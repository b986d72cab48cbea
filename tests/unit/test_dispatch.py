"""The dispatch table: every endpoint the router can produce has a handler in
``s3.ops.HANDLERS`` or is deliberately ``implemented=False`` (answered 501)."""

from __future__ import annotations

import inspect
import re

from s3gw.s3 import ops
from s3gw.s3.ops import HANDLERS
from s3gw.s3.wire import endpoints


def _routable() -> dict[str, endpoints.Endpoint]:
    eps = list(endpoints.TABLE.values())
    eps += [endpoints.LIST_OBJECTS_V2, endpoints.COPY_OBJECT, endpoints.UPLOAD_PART_COPY]
    return {ep.name: ep for ep in eps}


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def test_every_routable_endpoint_is_handled_or_not_implemented():
    for name, ep in _routable().items():
        if ep.implemented:
            assert name in HANDLERS, f"{name} is implemented but has no handler"
        else:
            assert name not in HANDLERS, f"{name} has a handler but is marked not implemented"


def test_every_handler_serves_a_routable_endpoint():
    routable = _routable()
    for name, fn in HANDLERS.items():
        assert name in routable, f"{name}: no such endpoint"
        assert inspect.iscoroutinefunction(fn), name
        assert fn.__name__ == _snake(name), (name, fn.__name__)   # named as AWS names it
        assert fn.__module__.startswith("s3gw.s3.ops."), (name, fn.__module__)


def test_no_handler_is_left_out_of_the_table():
    """A handler-shaped function in an ops module that the table does not list would be
    dead code (the old registration decorators answered 501 for a forgotten import)."""
    listed = set(HANDLERS.values())
    names = {_snake(n) for n in _routable()}
    for module_name in [m for m in dir(ops) if not m.startswith("_")]:
        module = getattr(ops, module_name)
        if not inspect.ismodule(module):
            continue
        for fname, fn in vars(module).items():
            if fname in names and inspect.iscoroutinefunction(fn):
                assert fn in listed, f"{module.__name__}.{fname} is not in HANDLERS"
