"""Multipart and copy planning (pure): completion, checksums of multipart objects, part ranges.

Theory of operation
-------------------
Everything here takes values and returns values (no I/O, no trio, no clock):

* :func:`plan_completion` checks a CompleteMultipartUpload part list against
  the stored parts (S3's rules: every listed part uploaded with that ETag,
  ascending -- the XML parser already checked the order --, every part but
  the last at least 5 MiB) and derives the new object: the parts' manifests
  to concatenate (no chunk is read or written), the ETag
  ``md5(concat(part MD5 digests))-N``, the part sizes and the checksum.
* Checksums of a multipart object, as S3 defines them:
  ``COMPOSITE`` = ``base64(H(concat(raw part checksums)))-N`` (every
  algorithm but crc64nvme); ``FULL_OBJECT`` = the CRC of the whole object,
  obtained by combining the part CRCs (:func:`crc_combine`: ``awscrt``'s
  ``combine_crc*``, no data read; crc32, crc32c, crc64nvme).
* :func:`part_range` maps ``partNumber=N`` to a byte range of the object.
* :func:`copy_preconditions` evaluates the ``x-amz-copy-source-if-*``
  headers as S3 does for CopyObject/UploadPartCopy.
* :func:`parse_copy_range` parses ``x-amz-copy-source-range``.

Errors are S3 errors (``InvalidPart``, ``EntityTooSmall``, ...): this is
protocol logic.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field
from typing import Mapping, Protocol, Sequence

import awscrt.checksums as _crt

from .dates import parse_http_date
from .errors import S3Error

__all__ = [
    "MIN_PART_SIZE", "MAX_PART_SIZE", "MAX_PART_NUMBER", "CHECKSUM_ALGORITHMS", "CHECKSUM_SIZES", "CRC_COMBINE",
    "CompletionPlan", "plan_completion", "multipart_etag", "composite_checksum",
    "full_object_crc", "crc_combine", "part_range", "copy_preconditions", "parse_copy_range",
    "checksum_type_for", "parse_part_number",
]

MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PART_SIZE = 5 * 1024 * 1024 * 1024
MAX_PART_NUMBER = 10000
#: raw digest sizes of the x-amz-checksum-* algorithms
CHECKSUM_SIZES = {"crc32": 4, "crc32c": 4, "crc64nvme": 8, "sha1": 20, "sha256": 32}
#: the x-amz-checksum-* algorithms, in the order responses list them
CHECKSUM_ALGORITHMS = tuple(CHECKSUM_SIZES)
#: the CRCs S3 can combine into a FULL_OBJECT checksum, and how
CRC_COMBINE = {
    "crc32": _crt.combine_crc32,
    "crc32c": _crt.combine_crc32c,
    "crc64nvme": _crt.combine_crc64nvme,
}
#: one-shot raw digests, for the COMPOSITE checksum (a hash of the part checksums)
_DIGESTS = {
    "crc32": lambda data: _crt.crc32(data).to_bytes(4, "big"),
    "crc32c": lambda data: _crt.crc32c(data).to_bytes(4, "big"),
    "crc64nvme": lambda data: _crt.crc64nvme(data).to_bytes(8, "big"),
    "sha1": lambda data: hashlib.sha1(data).digest(),
    "sha256": lambda data: hashlib.sha256(data).digest(),
}


class PartLike(Protocol):
    number: int
    size: int
    etag: str
    manifest: bytes
    checksums: Mapping[str, str]


@dataclass(frozen=True)
class CompletionPlan:
    part_manifests: tuple[bytes, ...]    # the parts' packed manifests, in order
    size: int
    etag: str                            # "<md5 hex>-N"
    parts: tuple[int, ...]               # part sizes
    checksums: dict[str, str] = field(default_factory=dict)
    expected: dict[int, str] = field(default_factory=dict)   # part number -> ETag used


def checksum_type_for(algorithm: str | None, requested: str | None) -> str | None:
    """The checksum type of a multipart upload (``x-amz-checksum-type`` on Create).

    Raises:
        S3Error: ``InvalidRequest`` for a type the algorithm cannot have.
    """
    if requested is not None:
        requested = requested.strip().upper()
        if requested not in ("COMPOSITE", "FULL_OBJECT"):
            raise S3Error("InvalidRequest", "Value for x-amz-checksum-type header is invalid.")
    if algorithm is None:
        if requested is not None:
            raise S3Error("InvalidRequest", "The x-amz-checksum-type header can only be used "
                                            "with the x-amz-checksum-algorithm header.")
        return None
    if requested is None:
        return "FULL_OBJECT" if algorithm == "crc64nvme" else "COMPOSITE"
    if requested == "FULL_OBJECT" and algorithm not in CRC_COMBINE:
        raise S3Error("InvalidRequest", f"The FULL_OBJECT checksum type cannot be used with "
                                        f"the {algorithm} checksum algorithm.")
    if requested == "COMPOSITE" and algorithm == "crc64nvme":
        raise S3Error("InvalidRequest", "The COMPOSITE checksum type cannot be used with the "
                                        "crc64nvme checksum algorithm.")
    return requested


def parse_part_number(text: str | None) -> int:
    """A ``partNumber`` query value: 1..10000 (``InvalidArgument`` otherwise)."""
    if text is None or not text.isascii() or not text.isdigit() or \
            not 1 <= int(text) <= MAX_PART_NUMBER:
        raise S3Error("InvalidArgument",
                      "Part number must be an integer between 1 and 10000, inclusive",
                      argument_name="partNumber", argument_value=text)
    return int(text)


def multipart_etag(md5_hexes: Sequence[str]) -> str:
    """``md5(concat(part MD5 digests))-N``."""
    h = hashlib.md5()
    for e in md5_hexes:
        try:
            h.update(bytes.fromhex(e))
        except ValueError:       # not an MD5 (never from s3gw): hash its text
            h.update(e.encode())
    return f"{h.hexdigest()}-{len(md5_hexes)}"


def _raw(value: str, algorithm: str) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != CHECKSUM_SIZES[algorithm]:
        raise ValueError(f"not a base64 {algorithm} checksum")
    return raw


def composite_checksum(algorithm: str, part_checksums: Sequence[str]) -> str:
    """S3's COMPOSITE checksum: ``base64(H(concat(raw part checksums)))-N``."""
    digest = _DIGESTS[algorithm](b"".join(_raw(value, algorithm) for value in part_checksums))
    return f"{base64.b64encode(digest).decode()}-{len(part_checksums)}"


def crc_combine(algorithm: str, crc1: int, crc2: int, len2: int) -> int:
    """CRC(A || B) from CRC(A), CRC(B) and len(B), for crc32/crc32c/crc64nvme
    (``awscrt.checksums.combine_*``: O(log n) GF(2) arithmetic, no data read)."""
    if len2 == 0:
        return crc1
    return CRC_COMBINE[algorithm](crc1, crc2, len2)


def full_object_crc(algorithm: str, part_checksums: Sequence[str], sizes: Sequence[int]) -> str:
    """The whole object's CRC (base64) from its parts' CRCs and sizes."""
    crc = 0
    for value, size in zip(part_checksums, sizes):
        crc = crc_combine(algorithm, crc, int.from_bytes(_raw(value, algorithm), "big"), size)
    return base64.b64encode(crc.to_bytes(CHECKSUM_SIZES[algorithm], "big")).decode()


def plan_completion(requested: Sequence[tuple[int, str, Mapping[str, str]]],
                    stored: Mapping[int, PartLike], *, checksum_algorithm: str | None = None,
                    checksum_type: str | None = None,
                    min_part_size: int = MIN_PART_SIZE) -> CompletionPlan:
    """Check a Complete request's parts against the stored ones and plan the object.

    Args:
        requested: ``[(part number, ETag, {algorithm: base64})]`` as parsed
            (ascending; ETags without quotes).
        stored: the upload's parts by number.
        checksum_algorithm / checksum_type: from CreateMultipartUpload.
    Returns:
        the plan; no chunk is touched.
    Raises:
        S3Error: ``InvalidPart`` (not uploaded, other ETag, other checksum),
        ``EntityTooSmall`` (a part but the last under ``min_part_size``).
    """
    chosen = []
    for number, etag, checksums in requested:
        part = stored.get(number)
        if part is None or etag.strip().strip('"').lower() != part.etag.lower():
            raise S3Error("InvalidPart", part_number=number, e_tag=etag)
        for algo, value in checksums.items():
            have = part.checksums.get(algo)
            if value and have is not None and value != have:
                raise S3Error("InvalidPart", f"The {algo.upper()} checksum of part {number} "
                                             "does not match the one uploaded.",
                              part_number=number)
        chosen.append(part)
    for part in chosen[:-1]:
        if part.size < min_part_size:
            raise S3Error("EntityTooSmall", proposed_size=part.size,
                          min_size_allowed=min_part_size, part_number=part.number,
                          e_tag=part.etag)
    sizes = tuple(p.size for p in chosen)
    checksums: dict[str, str] = {}
    algo = checksum_algorithm
    if algo is not None and all(algo in p.checksums for p in chosen):
        values = [p.checksums[algo] for p in chosen]
        if checksum_type == "FULL_OBJECT" and algo in CRC_COMBINE:
            checksums[algo] = full_object_crc(algo, values, sizes)
        else:
            checksums[algo] = composite_checksum(algo, values)
    return CompletionPlan(
        part_manifests=tuple(p.manifest for p in chosen), size=sum(sizes),
        etag=multipart_etag([p.etag for p in chosen]), parts=sizes, checksums=checksums,
        expected={p.number: p.etag for p in chosen})


def part_range(parts: Sequence[int], size: int, number: int) -> tuple[int, int]:
    """The byte range ``[start, end)`` of part ``number`` of an object.

    A single-part object has one part, the whole object.

    Raises:
        S3Error: ``InvalidPartNumber`` (416) beyond the last part.
    """
    sizes = list(parts) if parts else [size]
    if number > len(sizes):
        raise S3Error("InvalidPartNumber", part_number_requested=number,
                      actual_parts_count=len(sizes))
    start = sum(sizes[:number - 1])
    return start, start + sizes[number - 1]


def _etag_in(header: str, etag: str) -> bool:
    for candidate in header.split(","):
        c = candidate.strip()
        if c == "*":
            return True
        if c.startswith("W/"):
            c = c[2:]
        if c.strip('"') == etag:
            return True
    return False


def copy_preconditions(headers, etag: str, time_ns: int) -> str | None:
    """Evaluate ``x-amz-copy-source-if-*``; the failed header's name, or None to copy.

    As S3 documents: if-match true and unmodified-since false -> copy;
    if-none-match false and modified-since true -> 412.  Every failure is a
    412 (``PreconditionFailed``), never a 304.
    """
    prefix = "x-amz-copy-source-"
    modified_s = time_ns // 1_000_000_000
    if_match = headers.get(prefix + "if-match")
    if if_match is not None:
        if not _etag_in(if_match, etag):
            return prefix + "If-Match"
    else:
        ius = parse_http_date(headers.get(prefix + "if-unmodified-since"))
        if ius is not None and modified_s > ius // 1_000_000_000:
            return prefix + "If-Unmodified-Since"
    if_none = headers.get(prefix + "if-none-match")
    if if_none is not None:
        if _etag_in(if_none, etag):
            return prefix + "If-None-Match"
    else:
        ims = parse_http_date(headers.get(prefix + "if-modified-since"))
        if ims is not None and modified_s <= ims // 1_000_000_000:
            return prefix + "If-Modified-Since"
    return None


_COPY_RANGE = re.compile(r"bytes=(\d+)-(\d+)")


def parse_copy_range(value: str | None, size: int) -> tuple[int, int]:
    """``x-amz-copy-source-range: bytes=first-last`` -> ``[start, end)``; the
    whole object when absent.

    Raises:
        S3Error: ``InvalidArgument`` for a malformed range or one outside the
        source object (S3 does not clip copy ranges).
    """
    if value is None:
        return 0, size
    m = _COPY_RANGE.fullmatch(value.strip())
    if m is None:
        raise S3Error("InvalidArgument", "The x-amz-copy-source-range value must be of the "
                                         "form bytes=first-last where first and last are the "
                                         "zero-based offsets of the first and last bytes to copy",
                      argument_name="x-amz-copy-source-range", argument_value=value)
    first, last = int(m.group(1)), int(m.group(2))
    if first > last or last >= size:
        raise S3Error("InvalidArgument", f"Range specified is not valid for source object of size: {size}",
                      argument_name="x-amz-copy-source-range", argument_value=value)
    return first, last + 1
