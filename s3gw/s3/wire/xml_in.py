"""Parsers for the small XML request bodies S3 clients send.

Theory of operation
-------------------
Bodies are parsed with ``defusedxml.ElementTree`` (the standard guard against
XML entity tricks) with three guards:

1. a size cap (``MAX_XML_BODY``, 4 MiB: 1000 DeleteObjects keys of 1 KiB or
   10 000 Complete parts with checksums fit easily);
2. the body must be UTF-8 (a UTF-8 BOM is allowed), as S3 requires;
3. no markup declarations: a ``<!DOCTYPE`` (and with it any ``<!ENTITY``)
   is refused (``forbid_dtd``), so no entity expansion (internal or
   external) can happen.

Parsing is tolerant of what real clients send (CLIENTS.md 3.13): the S3
namespace or none (elements are matched by local name), any element order,
character references (``&#252;``, ``&#34;``), and ETags quoted, ``&#34;``-
escaped or bare.  Text is taken verbatim (keys are not stripped: spaces are
key bytes); numbers, booleans, ETags and version ids are stripped.

Anything else wrong -> ``S3Error("MalformedXML")``; rules S3 states in its
own terms keep their codes (``InvalidPartOrder``, ``InvalidArgument`` for a
part number outside 1..10000).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass

import defusedxml.ElementTree as _safe_et
from defusedxml import DefusedXmlException

from .errors import S3Error

__all__ = [
    "MAX_DELETE_KEYS",
    "MAX_PARTS",
    "MAX_XML_BODY",
    "parse_access_control_policy",
    "parse_complete_multipart",
    "parse_create_bucket",
    "parse_delete",
    "parse_delete_entries",
    "DeleteEntry",
    "parse_versioning",
]

MAX_XML_BODY = 4 * 1024 * 1024
MAX_DELETE_KEYS = 1000
MAX_PARTS = 10000
_CHECKSUMS = {
    "ChecksumCRC32": "crc32",
    "ChecksumCRC32C": "crc32c",
    "ChecksumCRC64NVME": "crc64nvme",
    "ChecksumSHA1": "sha1",
    "ChecksumSHA256": "sha256",
}


def _malformed(why: str = "") -> S3Error:
    msg = None
    if why:
        msg = (
            "The XML you provided was not well-formed or did not validate against "
            f"our published schema: {why}."
        )
    return S3Error("MalformedXML", msg)


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _root(body: bytes, name: str, max_size: int) -> ET.Element:
    if len(body) > max_size:
        raise _malformed("body too large")
    try:
        text = bytes(body).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _malformed("not UTF-8") from None
    try:
        root = _safe_et.fromstring(text, forbid_dtd=True)
    except DefusedXmlException:
        raise _malformed("markup declarations are not allowed") from None
    except ET.ParseError:
        raise _malformed() from None
    if _local(root.tag) != name:
        raise _malformed(f"expected a {name} element")
    return root


def _children(el: ET.Element, name: str) -> Iterator[ET.Element]:
    return (c for c in el if _local(c.tag) == name)


def _child(el: ET.Element, name: str) -> ET.Element | None:
    return next(_children(el, name), None)


def _strip(el: ET.Element | None) -> str | None:
    if el is None:
        return None
    return (el.text or "").strip()


def parse_delete(body: bytes, *, max_size: int = MAX_XML_BODY
                 ) -> tuple[bool, list[tuple[str, str | None, str | None]]]:
    """Parse a DeleteObjects body.

    Returns:
        ``(quiet, [(key, version_id or None, etag or None), …])`` in document
        order.  A ``<Key/>`` gives ``""`` (the operation reports it per key);
        ``<ETag>`` makes that key's delete conditional (AWS conditional deletes:
        the ETag, quoted or not, or ``*`` for "exists").

    Raises:
        S3Error: ``MalformedXML`` (not a Delete document, no objects, more
            than 1000, an Object without Key, Quiet not true/false).
    """
    return _delete_doc(_root(body, "Delete", max_size))


def _delete_doc(root: ET.Element) -> tuple[bool, list[tuple[str, str | None, str | None]]]:
    quiet_text = _strip(_child(root, "Quiet"))
    if quiet_text is None:
        quiet = False
    elif quiet_text.lower() in ("true", "false"):
        quiet = quiet_text.lower() == "true"
    else:
        raise _malformed("Quiet must be true or false")
    objects: list[tuple[str, str | None, str | None]] = []
    for obj in _children(root, "Object"):
        key_el = _child(obj, "Key")
        if key_el is None:
            raise _malformed("Object without Key")
        version = _strip(_child(obj, "VersionId")) or None
        etag = _strip(_child(obj, "ETag")) or None
        objects.append((key_el.text or "", version, etag))
        if len(objects) > MAX_DELETE_KEYS:
            raise _malformed(f"more than {MAX_DELETE_KEYS} keys")
    if not objects:
        raise _malformed("no Object elements")
    return quiet, objects


@dataclass(frozen=True, slots=True)
class DeleteEntry:
    """One ``<Object>`` of a DeleteObjects body.

    ``unsupported``: the names of conditions s3gw does not evaluate
    (``Size``, ``LastModifiedTime``: directory buckets only on AWS); such an
    entry is refused, never deleted unconditionally.
    """

    key: str
    version_id: str | None
    etag: str | None
    unsupported: tuple[str, ...] = ()


def parse_delete_entries(body: bytes, *, max_size: int = MAX_XML_BODY
                         ) -> tuple[bool, list[DeleteEntry]]:
    """``parse_delete`` with each entry's unsupported conditions (``DeleteEntry``)."""
    root = _root(body, "Delete", max_size)
    quiet, objects = _delete_doc(root)
    entries = []
    for (key, version, etag), obj in zip(objects, _children(root, "Object")):
        unsupported = tuple(n for n in ("Size", "LastModifiedTime") if _child(obj, n) is not None)
        entries.append(DeleteEntry(key, version, etag, unsupported))
    return quiet, entries


def parse_versioning(body: bytes, *, max_size: int = MAX_XML_BODY
                     ) -> tuple[str | None, str | None]:
    """Parse a PutBucketVersioning body: ``(Status, MfaDelete)``, each None if absent.

    Raises:
        S3Error: ``MalformedXML`` (not a VersioningConfiguration document, a
            Status other than Enabled/Suspended, an MfaDelete other than
            Enabled/Disabled, or neither element).
    """
    root = _root(body, "VersioningConfiguration", max_size)
    status = _strip(_child(root, "Status"))
    mfa = _strip(_child(root, "MfaDelete"))
    if status is not None and status not in ("Enabled", "Suspended"):
        raise _malformed("Status must be Enabled or Suspended")
    if mfa is not None and mfa not in ("Enabled", "Disabled"):
        raise _malformed("MfaDelete must be Enabled or Disabled")
    if status is None and mfa is None:
        raise _malformed("neither Status nor MfaDelete")
    return status, mfa


def parse_complete_multipart(
    body: bytes, *, max_size: int = MAX_XML_BODY
) -> list[tuple[int, str, dict[str, str]]]:
    """Parse a CompleteMultipartUpload body.

    Returns:
        ``[(part_number, etag without quotes, {"crc32": …, …}), …]`` in
        ascending part order.

    Raises:
        S3Error: ``MalformedXML`` (no parts, missing/non-numeric PartNumber,
            missing ETag); ``InvalidArgument`` (part number outside
            1..10000); ``InvalidPartOrder`` (not strictly ascending).
    """
    root = _root(body, "CompleteMultipartUpload", max_size)
    parts: list[tuple[int, str, dict[str, str]]] = []
    for part in _children(root, "Part"):
        num_text = _strip(_child(part, "PartNumber"))
        etag = _strip(_child(part, "ETag"))
        if not num_text or not num_text.isascii() or not num_text.isdigit():
            raise _malformed("PartNumber missing or not a number")
        if etag is None:
            raise _malformed("ETag missing")
        number = int(num_text)
        if not 1 <= number <= MAX_PARTS:
            raise S3Error(
                "InvalidArgument",
                "Part number must be an integer between 1 and 10000, inclusive",
                argument_name="partNumber",
                argument_value=num_text,
            )
        if parts and number <= parts[-1][0]:
            raise S3Error("InvalidPartOrder")
        checksums = {
            _CHECKSUMS[_local(c.tag)]: (c.text or "").strip() for c in part if _local(c.tag) in _CHECKSUMS
        }
        parts.append((number, etag.strip('"').strip(), checksums))
    if not parts:
        raise _malformed("no Part elements")
    return parts


def parse_create_bucket(body: bytes, *, max_size: int = MAX_XML_BODY) -> str | None:
    """Parse a CreateBucket body (may be empty).

    Returns:
        The ``LocationConstraint`` value, or ``None`` for an empty body or an
        empty/absent constraint.

    Raises:
        S3Error: ``MalformedXML`` for a non-empty body that is not a
            ``CreateBucketConfiguration`` document.
    """
    if not bytes(body).strip():
        return None
    root = _root(body, "CreateBucketConfiguration", max_size)
    return _strip(_child(root, "LocationConstraint")) or None


def parse_access_control_policy(body: bytes, *, max_size: int = MAX_XML_BODY
                                ) -> list[tuple[str, str, str]]:
    """Parse a PutBucketAcl / PutObjectAcl body.

    Returns:
        ``[(grantee type, id or URI, permission), …]`` in document order: the type
        is ``CanonicalUser`` (with its ``ID``), ``Group`` (its ``URI``) or
        ``AmazonCustomerByEmail`` (its ``EmailAddress``); the permission as sent.

    Raises:
        S3Error: ``MalformedACLError`` for a body that is not an
            ``AccessControlPolicy`` with well-formed grants.
    """
    try:
        root = _root(body, "AccessControlPolicy", max_size)
    except S3Error as exc:
        raise S3Error("MalformedACLError") from exc
    acl = _child(root, "AccessControlList")
    if acl is None:
        raise S3Error("MalformedACLError", "The AccessControlPolicy has no AccessControlList.")
    grants = []
    for grant in _children(acl, "Grant"):
        grantee = _child(grant, "Grantee")
        permission = _strip(_child(grant, "Permission"))
        if grantee is None or not permission:
            raise S3Error("MalformedACLError", "A Grant needs a Grantee and a Permission.")
        kind = next((v for k, v in grantee.attrib.items() if _local(k) == "type"), "")
        field = {"CanonicalUser": "ID", "Group": "URI",
                 "AmazonCustomerByEmail": "EmailAddress"}.get(kind)
        value = _strip(_child(grantee, field)) if field else None
        if not value:
            raise S3Error("MalformedACLError", "A Grantee needs its xsi:type and its ID, URI "
                                               "or EmailAddress.")
        grants.append((kind, value, permission))
    return grants
