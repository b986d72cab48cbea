"""Exact documents from the XML builders; url-encoding round trips."""

import xml.etree.ElementTree as ET
from urllib.parse import unquote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from s3gw.s3.wire import xml_out as x
from s3gw.s3.wire.errors import S3Error

H = '<?xml version="1.0" encoding="UTF-8"?>\n'
NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
T0 = 1_795_423_840_123_456_789  # 2026-11-23T08:50:40.123Z
OWNER = x.Owner("s3gw", "s3gw")
OWNER_XML = "<Owner><ID>s3gw</ID><DisplayName>s3gw</DisplayName></Owner>"


def doc(root, inner):
    return (H + f"<{root} {NS}>{inner}</{root}>").encode()


def test_time_constant():
    from s3gw.s3.wire.dates import iso8601_ms

    assert iso8601_ms(T0) == "2026-11-23T08:50:40.123Z"


def test_list_buckets():
    got = x.list_buckets_result([x.BucketEntry("master.images", T0), x.BucketEntry("dev.images", 0)], OWNER)
    assert got == doc(
        "ListAllMyBucketsResult",
        OWNER_XML + "<Buckets>"
        "<Bucket><Name>master.images</Name><CreationDate>2026-11-23T08:50:40.123Z</CreationDate></Bucket>"
        "<Bucket><Name>dev.images</Name><CreationDate>1970-01-01T00:00:00.000Z</CreationDate></Bucket>"
        "</Buckets>",
    )
    assert x.list_buckets_result([], OWNER) == doc("ListAllMyBucketsResult", OWNER_XML + "<Buckets></Buckets>")


def test_list_buckets_paginated():
    got = x.list_buckets_result([x.BucketEntry("dev.images", 0)], OWNER, prefix="dev",
                                continuation_token="bWFzdGVyLmltYWdlcw==", region="us-east-1")
    assert got == doc(
        "ListAllMyBucketsResult",
        OWNER_XML + "<Buckets>"
        "<Bucket><Name>dev.images</Name><CreationDate>1970-01-01T00:00:00.000Z</CreationDate>"
        "<BucketRegion>us-east-1</BucketRegion></Bucket>"
        "</Buckets><ContinuationToken>bWFzdGVyLmltYWdlcw==</ContinuationToken><Prefix>dev</Prefix>",
    )
    # last page of a prefix listing: Prefix echoed (even empty), no token
    got = x.list_buckets_result([], OWNER, prefix="", region="us-east-1")
    assert got == doc("ListAllMyBucketsResult", OWNER_XML + "<Buckets></Buckets><Prefix></Prefix>")


ENTRY = x.ListEntry("a/b.csv", T0, "d41d8cd98f00b204e9800998ecf8427e", 0)
ENTRY_XML = (
    "<Contents><Key>a/b.csv</Key><LastModified>2026-11-23T08:50:40.123Z</LastModified>"
    "<ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag><Size>0</Size>"
    "<StorageClass>STANDARD</StorageClass></Contents>"
)


def test_list_v1_plain():
    got = x.list_objects_v1("b", [ENTRY], ["c/"], delimiter="/")
    assert got == doc(
        "ListBucketResult",
        "<Name>b</Name><Prefix></Prefix><Marker></Marker><MaxKeys>1000</MaxKeys>"
        "<Delimiter>/</Delimiter><IsTruncated>false</IsTruncated>"
        + ENTRY_XML
        + "<CommonPrefixes><Prefix>c/</Prefix></CommonPrefixes>",
    )


def test_list_v1_owner_and_next_marker():
    got = x.list_objects_v1(
        "b", [ENTRY], ["c/"], prefix="", marker="0", delimiter="/", max_keys=2, is_truncated=True, owner=OWNER
    )
    assert got == doc(
        "ListBucketResult",
        "<Name>b</Name><Prefix></Prefix><Marker>0</Marker><NextMarker>c/</NextMarker><MaxKeys>2</MaxKeys>"
        "<Delimiter>/</Delimiter><IsTruncated>true</IsTruncated>"
        + ENTRY_XML.replace("<StorageClass>", OWNER_XML + "<StorageClass>")
        + "<CommonPrefixes><Prefix>c/</Prefix></CommonPrefixes>",
    )
    # no delimiter: no NextMarker even when truncated (clients use the last key)
    got = x.list_objects_v1("b", [ENTRY], [], max_keys=1, is_truncated=True)
    assert b"NextMarker" not in got
    # empty delimiter means none
    assert b"Delimiter" not in x.list_objects_v1("b", [], [], delimiter="")


def test_list_v1_url_encoded():
    e = x.ListEntry("a b+c/\u00fc&.txt", T0, "abc-2", 3)
    got = x.list_objects_v1(
        "b", [e], ["p q+/"], prefix="a b", marker="m+", delimiter="/", is_truncated=True,
        next_marker="z z", encoding_type="url",
    )
    assert got == doc(
        "ListBucketResult",
        "<Name>b</Name><Prefix>a%20b</Prefix><Marker>m%2B</Marker><NextMarker>z%20z</NextMarker>"
        "<MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter><EncodingType>url</EncodingType>"
        "<IsTruncated>true</IsTruncated>"
        "<Contents><Key>a%20b%2Bc/%C3%BC%26.txt</Key><LastModified>2026-11-23T08:50:40.123Z</LastModified>"
        "<ETag>&quot;abc-2&quot;</ETag><Size>3</Size><StorageClass>STANDARD</StorageClass></Contents>"
        "<CommonPrefixes><Prefix>p%20q%2B/</Prefix></CommonPrefixes>",
    )


def test_list_v2():
    got = x.list_objects_v2(
        "b", [ENTRY], ["c/"], prefix="a", delimiter="/", max_keys=2, is_truncated=True,
        continuation_token="tok1", next_continuation_token="tok/2+=", start_after="a+",
        encoding_type="url",
    )
    assert got == doc(
        "ListBucketResult",
        "<Name>b</Name><Prefix>a</Prefix><StartAfter>a%2B</StartAfter>"
        "<ContinuationToken>tok1</ContinuationToken><NextContinuationToken>tok/2+=</NextContinuationToken>"
        "<KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><Delimiter>/</Delimiter>"
        "<EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>"
        + ENTRY_XML
        + "<CommonPrefixes><Prefix>c/</Prefix></CommonPrefixes>",
    )
    got = x.list_objects_v2("b", [], [])
    assert got == doc(
        "ListBucketResult",
        "<Name>b</Name><Prefix></Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys>"
        "<IsTruncated>false</IsTruncated>",
    )


def test_list_versions():
    vs = [
        x.VersionEntry("k", "c" * 32, True, T0, "abc", 5),
        x.VersionEntry("k", "d" * 32, False, 0, delete_marker=True),
    ]
    got = x.list_object_versions("b", vs, [], owner=OWNER)
    assert got == doc(
        "ListVersionsResult",
        "<Name>b</Name><Prefix></Prefix><KeyMarker></KeyMarker><VersionIdMarker></VersionIdMarker>"
        "<MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>"
        f"<Version><Key>k</Key><VersionId>{'c' * 32}</VersionId><IsLatest>true</IsLatest>"
        "<LastModified>2026-11-23T08:50:40.123Z</LastModified><ETag>&quot;abc&quot;</ETag><Size>5</Size>"
        + OWNER_XML
        + "<StorageClass>STANDARD</StorageClass></Version>"
        f"<DeleteMarker><Key>k</Key><VersionId>{'d' * 32}</VersionId><IsLatest>false</IsLatest>"
        "<LastModified>1970-01-01T00:00:00.000Z</LastModified>" + OWNER_XML + "</DeleteMarker>",
    )


def test_location_versioning_acl():
    assert x.location_constraint(None) == (H + f"<LocationConstraint {NS}/>").encode()
    assert x.location_constraint("us-east-1") == (H + f"<LocationConstraint {NS}/>").encode()
    assert x.location_constraint("eu-west-1") == doc("LocationConstraint", "eu-west-1")
    assert x.versioning_configuration() == doc("VersioningConfiguration", "<Status>Enabled</Status>")
    assert x.access_control_policy(OWNER) == doc(
        "AccessControlPolicy",
        OWNER_XML + "<AccessControlList><Grant>"
        '<Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser">'
        "<ID>s3gw</ID><DisplayName>s3gw</DisplayName></Grantee>"
        "<Permission>FULL_CONTROL</Permission></Grant></AccessControlList>",
    )


def test_delete_result():
    got = x.delete_result(
        [
            x.Deleted("a"),
            x.DeleteError("b<", "AccessDenied", "Access Denied"),
            x.Deleted("c", version_id="v", delete_marker=True, delete_marker_version_id="w"),
        ]
    )
    assert got == doc(
        "DeleteResult",
        "<Deleted><Key>a</Key></Deleted>"
        "<Error><Key>b&lt;</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
        "<Deleted><Key>c</Key><VersionId>v</VersionId><DeleteMarker>true</DeleteMarker>"
        "<DeleteMarkerVersionId>w</DeleteMarkerVersionId></Deleted>",
    )
    assert x.delete_result([]) == doc("DeleteResult", "")


def test_multipart_documents():
    assert x.initiate_multipart_upload_result("b", "k&", "u1") == doc(
        "InitiateMultipartUploadResult", "<Bucket>b</Bucket><Key>k&amp;</Key><UploadId>u1</UploadId>"
    )
    assert x.complete_multipart_upload_result("/b/k", "b", "k", '"abc-2"', {"crc32": "AAAAAA=="}) == doc(
        "CompleteMultipartUploadResult",
        "<Location>/b/k</Location><Bucket>b</Bucket><Key>k</Key><ETag>&quot;abc-2&quot;</ETag>"
        "<ChecksumCRC32>AAAAAA==</ChecksumCRC32>",
    )
    parts = [x.PartEntry(1, T0, "aa", 5242880), x.PartEntry(2, 0, "bb", 1, {"crc32c": "x"})]
    got = x.list_parts_result(
        "b", "k", "u1", parts, part_number_marker=0, next_part_number_marker=2, max_parts=2,
        is_truncated=True, owner=OWNER,
    )
    assert got == doc(
        "ListPartsResult",
        "<Bucket>b</Bucket><Key>k</Key><UploadId>u1</UploadId>"
        + OWNER_XML.replace("Owner>", "Initiator>")
        + OWNER_XML
        + "<StorageClass>STANDARD</StorageClass><PartNumberMarker>0</PartNumberMarker>"
        "<NextPartNumberMarker>2</NextPartNumberMarker><MaxParts>2</MaxParts><IsTruncated>true</IsTruncated>"
        "<Part><PartNumber>1</PartNumber><LastModified>2026-11-23T08:50:40.123Z</LastModified>"
        "<ETag>&quot;aa&quot;</ETag><Size>5242880</Size></Part>"
        "<Part><PartNumber>2</PartNumber><LastModified>1970-01-01T00:00:00.000Z</LastModified>"
        "<ETag>&quot;bb&quot;</ETag><Size>1</Size><ChecksumCRC32C>x</ChecksumCRC32C></Part>",
    )
    got = x.list_multipart_uploads_result(
        "b", [x.UploadEntry("a b", "u1", T0)], ["d/"], prefix="", delimiter="/", encoding_type="url"
    )
    assert got == doc(
        "ListMultipartUploadsResult",
        "<Bucket>b</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>"
        "<NextKeyMarker></NextKeyMarker><NextUploadIdMarker></NextUploadIdMarker><Prefix></Prefix>"
        "<Delimiter>/</Delimiter><MaxUploads>1000</MaxUploads><EncodingType>url</EncodingType>"
        "<IsTruncated>false</IsTruncated>"
        "<Upload><Key>a%20b</Key><UploadId>u1</UploadId><StorageClass>STANDARD</StorageClass>"
        "<Initiated>2026-11-23T08:50:40.123Z</Initiated></Upload>"
        "<CommonPrefixes><Prefix>d/</Prefix></CommonPrefixes>",
    )


def test_copy_results():
    assert x.copy_object_result("abc", T0) == doc(
        "CopyObjectResult", "<ETag>&quot;abc&quot;</ETag><LastModified>2026-11-23T08:50:40.123Z</LastModified>"
    )
    assert x.copy_part_result("abc", T0) == doc(
        "CopyPartResult", "<ETag>&quot;abc&quot;</ETag><LastModified>2026-11-23T08:50:40.123Z</LastModified>"
    )


def test_encoding_type_check():
    assert x.check_encoding_type(None) is None
    assert x.check_encoding_type("") is None
    assert x.check_encoding_type("url") == "url"
    with pytest.raises(S3Error) as ei:
        x.check_encoding_type("base64")
    assert ei.value.code == "InvalidArgument"


def _keys(document: bytes):
    root = ET.fromstring(document)
    ns = "{http://s3.amazonaws.com/doc/2006-03-01/}"
    return [k.text or "" for k in root.iter(ns + "Key")], [p.text or "" for p in root.iter(ns + "Prefix")]


@given(st.text(min_size=1, max_size=60))
def test_url_encoding_round_trips_through_unquote_plus(key):
    assert unquote_plus(x.url_encode(key)) == key
    document = x.list_objects_v2(
        "b", [x.ListEntry(key, 0, "e", 1)], [key], prefix=key, delimiter="/", encoding_type="url"
    )
    keys, prefixes = _keys(document)
    assert [unquote_plus(k) for k in keys] == [key]
    assert [unquote_plus(p) for p in prefixes] == [key, key]


# Characters XML 1.0 can carry (the others become U+FFFD: see _xmltext).
_XML_OK = st.characters(
    blacklist_categories=("Cs",),
    blacklist_characters="".join(chr(c) for c in range(0x20) if c not in (9, 10, 13)) + "\ufffe\uffff",
)


@given(st.text(_XML_OK, min_size=1, max_size=60))
def test_plain_keys_round_trip_through_a_parser(key):
    document = x.list_objects_v1("b", [x.ListEntry(key, 0, "e", 1)], [], prefix=key)
    keys, prefixes = _keys(document)
    assert keys == [key]
    assert prefixes == [key]


def test_characters_xml_cannot_carry_become_replacement_characters():
    document = x.list_objects_v1("b", [x.ListEntry("a\x01\r\tb", 0, "e", 1)], [])
    assert "<Key>a\ufffd&#13;\tb</Key>".encode() in document
