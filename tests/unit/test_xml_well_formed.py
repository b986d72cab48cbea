"""Every XML document s3gw writes is well-formed, whatever the keys and values in it
(issue 23): each response builder of ``s3.wire.xml_out`` and ``error_xml``, called
with hostile text (control characters, CR/LF, ``]]>``, markup, surrogates,
U+FFFE/U+FFFF, non-BMP) in every string argument, parses with a strict XML 1.0
parser.  The builders are found by introspection: a new one is covered by
``_value`` (or fails ``test_every_builder_is_covered``)."""

from __future__ import annotations

import inspect
import xml.etree.ElementTree as ET

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s3gw.s3.wire import xml_out as x
from s3gw.s3.wire.errors import ERRORS, S3Error, error_xml

HOSTILE = st.one_of(
    st.text(max_size=20),
    st.text(st.characters(min_codepoint=0, max_codepoint=0x20), max_size=8),
    st.sampled_from(["a\x07b", "\r\n", "]]>", "<k>&amp;", "\ud800", "\ufffe\uffff", "\x00",
                     "x\x1b[31m", "\U0001F600", '"\'', "\x7f\x85"]),
)
NS = st.integers(0, 2**62)
SIZE = st.integers(0, 2**53)


def _value(annotation: str, name: str):
    """A strategy for one parameter, from its annotation (a string: PEP 563)."""
    a = annotation.replace(" ", "")
    if name == "encoding_type":
        return st.sampled_from([None, "url"])
    if name in ("body", "max_size"):
        return None
    if a in ("str", "str|None"):
        return HOSTILE if a == "str" else st.none() | HOSTILE
    if a == "int":
        return SIZE
    if a == "bool":
        return st.booleans()
    if a in ("Owner", "Owner|None"):
        return st.builds(x.Owner, HOSTILE, HOSTILE) | (st.none() if "None" in a else st.nothing())
    if a == "list[str]":
        return st.lists(HOSTILE, max_size=3)
    if a in ("Mapping[str,str]|None", "Mapping[str,str]"):
        return st.dictionaries(st.sampled_from(["crc32", "crc32c", "sha1", "sha256", "crc64nvme"]),
                               HOSTILE, max_size=2)
    if a == "Iterable[tuple[str,str]]|None":
        return st.lists(st.tuples(HOSTILE, st.sampled_from(["READ", "WRITE", "FULL_CONTROL"])),
                        max_size=3)
    entries = {
        "BucketEntry": st.builds(x.BucketEntry, HOSTILE, NS),
        "ListEntry": st.builds(x.ListEntry, HOSTILE, NS, HOSTILE, SIZE, HOSTILE),
        "VersionEntry": st.builds(x.VersionEntry, HOSTILE, HOSTILE, st.booleans(), NS, HOSTILE,
                                  SIZE, st.booleans(), HOSTILE),
        "UploadEntry": st.builds(x.UploadEntry, HOSTILE, HOSTILE, NS, HOSTILE),
        "PartEntry": st.builds(x.PartEntry, st.integers(1, 10000), NS, HOSTILE, SIZE,
                               st.dictionaries(st.sampled_from(["crc32", "sha256"]), HOSTILE,
                                               max_size=2)),
        "Deleted|DeleteError": st.one_of(
            st.builds(x.Deleted, HOSTILE, st.none() | HOSTILE, st.booleans(), st.none() | HOSTILE),
            st.builds(x.DeleteError, HOSTILE, HOSTILE, HOSTILE, st.none() | HOSTILE)),
    }
    for kind, strategy in entries.items():
        if a in (f"Iterable[{kind}]", f"list[{kind}]"):
            return st.lists(strategy, max_size=3)
    raise AssertionError(f"no strategy for {name}: {annotation}")


def _builders():
    out = {}
    for name in x.__all__:
        fn = getattr(x, name)
        if inspect.isfunction(fn) and inspect.signature(fn).return_annotation == "bytes":
            out[name] = fn
    return out


def _call_strategy(fn):
    kwargs = {}
    for p in inspect.signature(fn).parameters.values():
        strategy = _value(str(p.annotation), p.name)
        if strategy is not None:
            kwargs[p.name] = strategy
    return st.fixed_dictionaries(kwargs)


BUILDERS = _builders()


def test_every_builder_is_covered():
    assert len(BUILDERS) >= 14
    for fn in BUILDERS.values():
        _call_strategy(fn)          # raises for a parameter without a strategy


def _parse(document: bytes) -> None:
    ET.fromstring(document)        # expat: raises on anything not well-formed


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.data())
def test_every_response_builder_writes_well_formed_xml(data):
    name = data.draw(st.sampled_from(sorted(BUILDERS)))
    fn = BUILDERS[name]
    kwargs = data.draw(_call_strategy(fn))
    try:
        document = fn(**kwargs)
    except S3Error:
        return                     # refused (e.g. an invalid argument), as S3 would
    _parse(document)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(ERRORS)), HOSTILE, HOSTILE, HOSTILE, HOSTILE)
def test_error_documents_are_well_formed(code, message, resource, request_id, key):
    _parse(error_xml(S3Error(code, message, key=key), resource=resource, request_id=request_id))
    _parse(error_xml(S3Error(code), resource=resource, request_id=request_id))
