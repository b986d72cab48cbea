"""S3 XML response documents (builders); request parsers re-exported.

Theory of operation
-------------------
Each builder takes plain values and small frozen dataclasses and returns the
exact document as UTF-8 bytes::

    <?xml version="1.0" encoding="UTF-8"?>
    <Root xmlns="http://s3.amazonaws.com/doc/2006-03-01/">…</Root>

with no whitespace between elements, so tests can compare whole documents.
Element order follows the AWS API reference examples (clients' parsers do
not depend on order, but a fixed order keeps documents reproducible).

Conventions:

* Times are ``int`` nanoseconds, written ``2026-11-23T08:50:40.000Z``.
* ETags are passed bare (``d41d8cd9…`` or ``…-3``; surrounding quotes are
  tolerated) and written quoted and escaped, as S3 does:
  ``<ETag>&quot;d41d8cd9…&quot;</ETag>``.
* Text is escaped by :func:`s3gw.s3.wire._xmltext.xml_text`: ``& < > "``
  become entities, ``\\r`` becomes ``&#13;``, and characters XML 1.0 cannot
  carry become U+FFFD, so every document is well-formed (S3 sends ``&#xN;``
  references, which strict parsers refuse; a listing is exact with
  ``encoding-type=url`` -- see that module).
* ``encoding_type="url"`` (listings and ListMultipartUploads) percent-encodes
  Key, Prefix, Delimiter, Marker, NextMarker, StartAfter, KeyMarker,
  NextKeyMarker and CommonPrefixes/Prefix with :func:`url_encode`, which
  ``urllib.parse.unquote_plus`` inverts exactly (botocore decodes that
  way): ``+`` -> ``%2B``, space -> ``%20``, ``/`` kept, non-ASCII as UTF-8
  percent bytes; and adds ``<EncodingType>url</EncodingType>``.
  Continuation tokens are opaque and never encoded.
* An empty or ``None`` delimiter is left out (``delimiter=`` means none).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

from ._xmltext import xml_text
from .dates import iso8601_ms
from .errors import S3Error
from .xml_in import MAX_XML_BODY, parse_complete_multipart, parse_create_bucket, parse_delete

__all__ = [
    "MAX_XML_BODY",
    "NS",
    "BucketEntry",
    "DeleteError",
    "Deleted",
    "ListEntry",
    "Owner",
    "PartEntry",
    "UploadEntry",
    "VersionEntry",
    "access_control_policy",
    "check_encoding_type",
    "complete_multipart_upload_result",
    "copy_object_result",
    "copy_part_result",
    "delete_result",
    "initiate_multipart_upload_result",
    "list_buckets_result",
    "list_multipart_uploads_result",
    "list_objects_v1",
    "list_objects_v2",
    "list_object_versions",
    "list_parts_result",
    "location_constraint",
    "parse_complete_multipart",
    "parse_create_bucket",
    "parse_delete",
    "url_encode",
    "versioning_configuration",
]

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
_CHECKSUM_ELEMENTS = {
    "crc32": "ChecksumCRC32",
    "crc32c": "ChecksumCRC32C",
    "crc64nvme": "ChecksumCRC64NVME",
    "sha1": "ChecksumSHA1",
    "sha256": "ChecksumSHA256",
}


@dataclass(frozen=True, slots=True)
class Owner:
    id: str
    display_name: str


@dataclass(frozen=True, slots=True)
class BucketEntry:
    name: str
    creation_ns: int


@dataclass(frozen=True, slots=True)
class ListEntry:
    key: str
    last_modified_ns: int
    etag: str
    size: int
    storage_class: str = "STANDARD"


@dataclass(frozen=True, slots=True)
class VersionEntry:
    key: str
    version_id: str
    is_latest: bool
    last_modified_ns: int
    etag: str = ""
    size: int = 0
    delete_marker: bool = False
    storage_class: str = "STANDARD"


@dataclass(frozen=True, slots=True)
class Deleted:
    key: str
    version_id: str | None = None
    delete_marker: bool = False
    delete_marker_version_id: str | None = None


@dataclass(frozen=True, slots=True)
class DeleteError:
    key: str
    code: str
    message: str
    version_id: str | None = None


@dataclass(frozen=True, slots=True)
class PartEntry:
    part_number: int
    last_modified_ns: int
    etag: str
    size: int
    checksums: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UploadEntry:
    key: str
    upload_id: str
    initiated_ns: int
    storage_class: str = "STANDARD"


def url_encode(s: str) -> str:
    """Percent-encode for ``encoding-type=url`` (inverse: ``unquote_plus``).  A lone
    surrogate (a request's undecodable byte, kept by ``surrogateescape``) goes out
    as that byte; any other as its UTF-8-style bytes, never an exception."""
    try:
        return quote(s, safe="/")
    except UnicodeEncodeError:
        try:
            raw = s.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raw = s.encode("utf-8", "surrogatepass")
        return quote(raw, safe="/")


def check_encoding_type(value: str | None) -> str | None:
    """Validate the ``encoding-type`` parameter: ``url``, or absent/empty.

    Raises:
        S3Error: ``InvalidArgument`` for any other value.
    """
    if not value:
        return None
    if value.lower() != "url":
        raise S3Error(
            "InvalidArgument",
            "Invalid Encoding Method specified in Request",
            argument_name="encoding-type",
            argument_value=value,
        )
    return "url"


def _el(name: str, text: object) -> str:
    return f"<{name}>{xml_text(str(text))}</{name}>"


def _bool(v: bool) -> str:
    return "true" if v else "false"


def _etag(etag: str) -> str:
    return _el("ETag", '"' + etag.strip().strip('"') + '"')


def _owner(tag: str, owner: Owner | None) -> str:
    if owner is None:
        return ""
    return f"<{tag}>{_el('ID', owner.id)}{_el('DisplayName', owner.display_name)}</{tag}>"


def _checksums(checksums: Mapping[str, str] | None) -> str:
    if not checksums:
        return ""
    return "".join(
        _el(_CHECKSUM_ELEMENTS[a], checksums[a]) for a in _CHECKSUM_ELEMENTS if a in checksums
    )


def _doc(root: str, body: Iterable[str]) -> bytes:
    return (_HEAD + f'<{root} xmlns="{NS}">' + "".join(body) + f"</{root}>").encode("utf-8")


class _Enc:
    """Encodes listing names when ``encoding-type=url`` was asked for."""

    def __init__(self, encoding_type: str | None) -> None:
        self.url = encoding_type == "url"

    def __call__(self, s: str) -> str:
        return url_encode(s) if self.url else s

    def tag(self) -> str:
        return _el("EncodingType", "url") if self.url else ""


def _prefixes(enc: _Enc, common_prefixes: Iterable[str]) -> str:
    return "".join(f"<CommonPrefixes>{_el('Prefix', enc(p))}</CommonPrefixes>" for p in common_prefixes)


def _contents(enc: _Enc, entries: Iterable[ListEntry], owner: Owner | None) -> str:
    return "".join(
        "<Contents>"
        + _el("Key", enc(e.key))
        + _el("LastModified", iso8601_ms(e.last_modified_ns))
        + _etag(e.etag)
        + _el("Size", e.size)
        + _owner("Owner", owner)
        + _el("StorageClass", e.storage_class)
        + "</Contents>"
        for e in entries
    )


def list_buckets_result(
    buckets: Iterable[BucketEntry],
    owner: Owner,
    *,
    prefix: str | None = None,
    continuation_token: str | None = None,
    region: str | None = None,
) -> bytes:
    """ListAllMyBucketsResult.

    The paginated form (any of ``prefix``, ``max-buckets``,
    ``continuation-token``, ``bucket-region`` in the request): *region* adds
    ``BucketRegion`` to each ``Bucket``; *continuation_token* (the token for
    the next page, when more buckets remain) and *prefix* (echoed when the
    request had one) come after ``Buckets`` (last, as the AWS response syntax
    lists them).
    Bucket names are never url-encoded (ListBuckets has no encoding-type).
    """
    region_el = _el("BucketRegion", region) if region is not None else ""
    items = "".join(
        f"<Bucket>{_el('Name', b.name)}{_el('CreationDate', iso8601_ms(b.creation_ns))}"
        f"{region_el}</Bucket>"
        for b in buckets
    )
    parts = [_owner("Owner", owner), f"<Buckets>{items}</Buckets>"]
    if continuation_token is not None:
        parts.append(_el("ContinuationToken", continuation_token))
    if prefix is not None:
        parts.append(_el("Prefix", prefix))
    return _doc("ListAllMyBucketsResult", parts)


def list_objects_v1(
    bucket: str,
    entries: list[ListEntry],
    common_prefixes: list[str],
    *,
    prefix: str = "",
    marker: str = "",
    delimiter: str | None = None,
    max_keys: int = 1000,
    is_truncated: bool = False,
    next_marker: str | None = None,
    encoding_type: str | None = None,
    owner: Owner | None = None,
) -> bytes:
    """ListBucketResult (ListObjects, version 1).

    ``NextMarker`` is written only when the listing is truncated and a
    delimiter is set (as S3 does; without a delimiter clients continue from
    the last key).  If *next_marker* is not given it is the greater of the
    last key and the last common prefix.
    """
    enc = _Enc(encoding_type)
    if is_truncated and delimiter and next_marker is None:
        last = ([entries[-1].key] if entries else []) + common_prefixes[-1:]
        next_marker = max(last, key=lambda s: s.encode("utf-8", "surrogatepass")) if last else None
    parts = [_el("Name", bucket), _el("Prefix", enc(prefix)), _el("Marker", enc(marker or ""))]
    if is_truncated and delimiter and next_marker is not None:
        parts.append(_el("NextMarker", enc(next_marker)))
    parts.append(_el("MaxKeys", max_keys))
    if delimiter:
        parts.append(_el("Delimiter", enc(delimiter)))
    parts += [enc.tag(), _el("IsTruncated", _bool(is_truncated))]
    parts += [_contents(enc, entries, owner), _prefixes(enc, common_prefixes)]
    return _doc("ListBucketResult", parts)


def list_objects_v2(
    bucket: str,
    entries: list[ListEntry],
    common_prefixes: list[str],
    *,
    prefix: str = "",
    delimiter: str | None = None,
    max_keys: int = 1000,
    is_truncated: bool = False,
    continuation_token: str | None = None,
    next_continuation_token: str | None = None,
    start_after: str | None = None,
    encoding_type: str | None = None,
    owner: Owner | None = None,
) -> bytes:
    """ListBucketResult (ListObjectsV2).  *owner* only with ``fetch-owner=true``.

    ``KeyCount`` is the number of keys plus common prefixes returned.
    """
    enc = _Enc(encoding_type)
    parts = [_el("Name", bucket), _el("Prefix", enc(prefix))]
    if start_after:
        parts.append(_el("StartAfter", enc(start_after)))
    if continuation_token is not None:
        parts.append(_el("ContinuationToken", continuation_token))
    if next_continuation_token is not None:
        parts.append(_el("NextContinuationToken", next_continuation_token))
    parts += [_el("KeyCount", len(entries) + len(common_prefixes)), _el("MaxKeys", max_keys)]
    if delimiter:
        parts.append(_el("Delimiter", enc(delimiter)))
    parts += [enc.tag(), _el("IsTruncated", _bool(is_truncated))]
    parts += [_contents(enc, entries, owner), _prefixes(enc, common_prefixes)]
    return _doc("ListBucketResult", parts)


def list_object_versions(
    bucket: str,
    versions: Iterable[VersionEntry],
    common_prefixes: list[str],
    *,
    prefix: str = "",
    key_marker: str = "",
    version_id_marker: str = "",
    next_key_marker: str | None = None,
    next_version_id_marker: str | None = None,
    delimiter: str | None = None,
    max_keys: int = 1000,
    is_truncated: bool = False,
    encoding_type: str | None = None,
    owner: Owner | None = None,
) -> bytes:
    """ListVersionsResult: ``Version`` and ``DeleteMarker`` entries in the given order."""
    enc = _Enc(encoding_type)
    parts = [
        _el("Name", bucket),
        _el("Prefix", enc(prefix)),
        _el("KeyMarker", enc(key_marker)),
        _el("VersionIdMarker", version_id_marker),
    ]
    if next_key_marker is not None:
        parts.append(_el("NextKeyMarker", enc(next_key_marker)))
    if next_version_id_marker is not None:
        parts.append(_el("NextVersionIdMarker", next_version_id_marker))
    parts.append(_el("MaxKeys", max_keys))
    if delimiter:
        parts.append(_el("Delimiter", enc(delimiter)))
    parts += [enc.tag(), _el("IsTruncated", _bool(is_truncated))]
    for v in versions:
        head = _el("Key", enc(v.key)) + _el("VersionId", v.version_id)
        head += _el("IsLatest", _bool(v.is_latest)) + _el("LastModified", iso8601_ms(v.last_modified_ns))
        if v.delete_marker:
            parts.append(f"<DeleteMarker>{head}{_owner('Owner', owner)}</DeleteMarker>")
        else:
            parts.append(
                f"<Version>{head}{_etag(v.etag)}{_el('Size', v.size)}"
                f"{_owner('Owner', owner)}{_el('StorageClass', v.storage_class)}</Version>"
            )
    parts.append(_prefixes(enc, common_prefixes))
    return _doc("ListVersionsResult", parts)


def location_constraint(region: str | None) -> bytes:
    """LocationConstraint: empty element for ``us-east-1`` (or ``None``)."""
    if not region or region == "us-east-1":
        return (_HEAD + f'<LocationConstraint xmlns="{NS}"/>').encode("utf-8")
    return _doc("LocationConstraint", [xml_text(region)])


def versioning_configuration(status: str = "Enabled") -> bytes:
    """VersioningConfiguration: ``Enabled`` (s3gw's default) or ``Suspended``."""
    return _doc("VersioningConfiguration", [_el("Status", status)])


def access_control_policy(owner: Owner, grants: Iterable[tuple[str, str]] | None = None) -> bytes:
    """AccessControlPolicy: the owner has FULL_CONTROL, then ``(user id, permission)``
    grants (with auth on: the repo's roles)."""
    def grant(user_id: str, display: str, permission: str) -> str:
        grantee = (
            '<Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser">'
            f"{_el('ID', user_id)}{_el('DisplayName', display)}</Grantee>"
        )
        return f"<Grant>{grantee}{_el('Permission', permission)}</Grant>"

    items = [grant(owner.id, owner.display_name, "FULL_CONTROL")]
    items.extend(grant(user, user, permission) for user, permission in grants or ())
    acl = f"<AccessControlList>{''.join(items)}</AccessControlList>"
    return _doc("AccessControlPolicy", [_owner("Owner", owner), acl])


def delete_result(results: Iterable[Deleted | DeleteError]) -> bytes:
    """DeleteResult, entries in the given order (filter for Quiet mode first)."""
    parts = []
    for r in results:
        body = _el("Key", r.key)
        if r.version_id is not None:
            body += _el("VersionId", r.version_id)
        if isinstance(r, DeleteError):
            parts.append(f"<Error>{body}{_el('Code', r.code)}{_el('Message', r.message)}</Error>")
            continue
        if r.delete_marker:
            body += _el("DeleteMarker", "true")
            if r.delete_marker_version_id is not None:
                body += _el("DeleteMarkerVersionId", r.delete_marker_version_id)
        parts.append(f"<Deleted>{body}</Deleted>")
    return _doc("DeleteResult", parts)


def initiate_multipart_upload_result(bucket: str, key: str, upload_id: str) -> bytes:
    """InitiateMultipartUploadResult."""
    return _doc(
        "InitiateMultipartUploadResult",
        [_el("Bucket", bucket), _el("Key", key), _el("UploadId", upload_id)],
    )


def complete_multipart_upload_result(
    location: str, bucket: str, key: str, etag: str, checksums: Mapping[str, str] | None = None,
    checksum_type: str | None = None,
) -> bytes:
    """CompleteMultipartUploadResult (checksums: ``{"crc32": base64, …}``; checksum_type:
    ``COMPOSITE`` or ``FULL_OBJECT``, given when the upload had a checksum algorithm)."""
    return _doc(
        "CompleteMultipartUploadResult",
        [
            _el("Location", location),
            _el("Bucket", bucket),
            _el("Key", key),
            _etag(etag),
            _checksums(checksums),
            _el("ChecksumType", checksum_type) if checksum_type else "",
        ],
    )


def list_parts_result(
    bucket: str,
    key: str,
    upload_id: str,
    parts: Iterable[PartEntry],
    *,
    part_number_marker: int = 0,
    next_part_number_marker: int = 0,
    max_parts: int = 1000,
    is_truncated: bool = False,
    owner: Owner | None = None,
    storage_class: str = "STANDARD",
    checksum_algorithm: str | None = None,
    checksum_type: str | None = None,
) -> bytes:
    """ListPartsResult (``checksum_algorithm`` / ``checksum_type``: the upload's, if any)."""
    items = "".join(
        "<Part>"
        + _el("PartNumber", p.part_number)
        + _el("LastModified", iso8601_ms(p.last_modified_ns))
        + _etag(p.etag)
        + _el("Size", p.size)
        + _checksums(p.checksums)
        + "</Part>"
        for p in parts
    )
    return _doc(
        "ListPartsResult",
        [
            _el("Bucket", bucket),
            _el("Key", key),
            _el("UploadId", upload_id),
            _owner("Initiator", owner),
            _owner("Owner", owner),
            _el("StorageClass", storage_class),
            _el("PartNumberMarker", part_number_marker),
            _el("NextPartNumberMarker", next_part_number_marker),
            _el("MaxParts", max_parts),
            _el("IsTruncated", _bool(is_truncated)),
            _el("ChecksumAlgorithm", checksum_algorithm.upper()) if checksum_algorithm else "",
            _el("ChecksumType", checksum_type) if checksum_type else "",
            items,
        ],
    )


def list_multipart_uploads_result(
    bucket: str,
    uploads: Iterable[UploadEntry],
    common_prefixes: list[str] = (),  # type: ignore[assignment]
    *,
    key_marker: str = "",
    upload_id_marker: str = "",
    next_key_marker: str = "",
    next_upload_id_marker: str = "",
    prefix: str = "",
    delimiter: str | None = None,
    max_uploads: int = 1000,
    is_truncated: bool = False,
    encoding_type: str | None = None,
    owner: Owner | None = None,
) -> bytes:
    """ListMultipartUploadsResult."""
    enc = _Enc(encoding_type)
    parts = [
        _el("Bucket", bucket),
        _el("KeyMarker", enc(key_marker)),
        _el("UploadIdMarker", upload_id_marker),
        _el("NextKeyMarker", enc(next_key_marker)),
        _el("NextUploadIdMarker", next_upload_id_marker),
        _el("Prefix", enc(prefix)),
    ]
    if delimiter:
        parts.append(_el("Delimiter", enc(delimiter)))
    parts += [_el("MaxUploads", max_uploads), enc.tag(), _el("IsTruncated", _bool(is_truncated))]
    for u in uploads:
        parts.append(
            "<Upload>"
            + _el("Key", enc(u.key))
            + _el("UploadId", u.upload_id)
            + _owner("Initiator", owner)
            + _owner("Owner", owner)
            + _el("StorageClass", u.storage_class)
            + _el("Initiated", iso8601_ms(u.initiated_ns))
            + "</Upload>"
        )
    parts.append(_prefixes(enc, common_prefixes))
    return _doc("ListMultipartUploadsResult", parts)


def copy_object_result(etag: str, last_modified_ns: int) -> bytes:
    """CopyObjectResult."""
    return _doc("CopyObjectResult", [_etag(etag), _el("LastModified", iso8601_ms(last_modified_ns))])


def copy_part_result(etag: str, last_modified_ns: int) -> bytes:
    """CopyPartResult."""
    return _doc("CopyPartResult", [_etag(etag), _el("LastModified", iso8601_ms(last_modified_ns))])
