"""Request-body parsers against the odd shapes real clients send (CLIENTS.md 3.13)."""

import pytest

from s3gw.s3.wire.errors import S3Error
from s3gw.s3.wire.xml_out import parse_complete_multipart, parse_create_bucket, parse_delete

NS = ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'


def code_of(fn, body):
    with pytest.raises(S3Error) as ei:
        fn(body)
    return ei.value.code


@pytest.mark.parametrize("ns", [NS, ""])
def test_delete_shapes(ns):
    # boto3: namespace, Quiet after the objects
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?><Delete{ns}><Object><Key>a</Key></Object>'
        "<Object><Key>\u00fc &#252;</Key><VersionId> v1 </VersionId></Object><Quiet>true</Quiet></Delete>"
    ).encode()
    assert parse_delete(body) == (True, [("a", None, None), ("\u00fc \u00fc", "v1", None)])


def test_delete_quiet_first_and_false():
    body = b"<Delete><Quiet>false</Quiet><Object><Key> spaced </Key></Object></Delete>"
    assert parse_delete(body) == (False, [(" spaced ", None, None)])
    body = b"<Delete><Quiet>TRUE</Quiet><Object><Key>k</Key><VersionId></VersionId></Object></Delete>"
    assert parse_delete(body) == (True, [("k", None, None)])
    assert parse_delete(b"<Delete><Object><Key></Key></Object></Delete>") == (False, [("", None, None)])


def test_delete_etags_make_keys_conditional():
    body = (b'<Delete><Object><Key>a</Key><ETag>"0cc175b9c0f1b6a831c399e269772661"</ETag></Object>'
            b"<Object><Key>b</Key><ETag> * </ETag></Object><Object><Key>c</Key><ETag/></Object></Delete>")
    assert parse_delete(body) == (False, [("a", None, '"0cc175b9c0f1b6a831c399e269772661"'),
                                          ("b", None, "*"), ("c", None, None)])


def test_delete_with_bom_and_comment():
    body = "\ufeff<!-- c --><Delete><Object><Key><![CDATA[a<b]]></Key></Object></Delete>".encode()
    assert parse_delete(body) == (False, [("a<b", None, None)])


def test_delete_limits():
    many = b"<Delete>" + b"<Object><Key>k</Key></Object>" * 1000 + b"</Delete>"
    assert len(parse_delete(many)[1]) == 1000
    too_many = b"<Delete>" + b"<Object><Key>k</Key></Object>" * 1001 + b"</Delete>"
    assert code_of(parse_delete, too_many) == "MalformedXML"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<Delete></Delete>",
        b"<Delete><Object><VersionId>x</VersionId></Object></Delete>",
        b"<Delete><Quiet>yes</Quiet><Object><Key>k</Key></Object></Delete>",
        b"<Remove><Object><Key>k</Key></Object></Remove>",
        b"<Delete><Object><Key>k</Key></Object>",
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x "y">]><Delete><Object><Key>&x;</Key></Object></Delete>',
        b'<!DOCTYPE Delete SYSTEM "file:///etc/passwd"><Delete/>',
        b"<Delete><Object><Key>\xff</Key></Object></Delete>",
        b"<Delete><Object><Key>&#0;</Key></Object></Delete>",
    ],
)
def test_delete_malformed(body):
    assert code_of(parse_delete, body) == "MalformedXML"


def test_size_cap():
    body = b"<Delete><Object><Key>" + b"k" * 100 + b"</Key></Object></Delete>"
    with pytest.raises(S3Error) as ei:
        parse_delete(body, max_size=50)
    assert ei.value.code == "MalformedXML"


@pytest.mark.parametrize("ns", [NS, ""])
def test_complete_shapes(ns):
    body = (
        f"<CompleteMultipartUpload{ns}>"
        '<Part><ETag>"aa"</ETag><PartNumber>1</PartNumber></Part>'  # quoted, ETag first
        "<Part><PartNumber>2</PartNumber><ETag>&#34;bb&#34;</ETag></Part>"  # rclone
        "<Part><PartNumber> 3 </PartNumber><ETag>cc</ETag></Part>"  # s3cmd / minio-go: bare
        "<Part><PartNumber>4</PartNumber><ETag>&quot;dd-1&quot;</ETag>"
        "<ChecksumCRC32>AAAAAA==</ChecksumCRC32><ChecksumSHA256>xyz</ChecksumSHA256></Part>"
        "</CompleteMultipartUpload>"
    ).encode()
    assert parse_complete_multipart(body) == [
        (1, "aa", {}),
        (2, "bb", {}),
        (3, "cc", {}),
        (4, "dd-1", {"crc32": "AAAAAA==", "sha256": "xyz"}),
    ]


def test_complete_errors():
    part = "<Part><PartNumber>{}</PartNumber><ETag>e</ETag></Part>"
    wrap = "<CompleteMultipartUpload>{}</CompleteMultipartUpload>"
    for order in ((2, 1), (1, 1)):
        body = wrap.format("".join(part.format(n) for n in order)).encode()
        assert code_of(parse_complete_multipart, body) == "InvalidPartOrder"
    assert code_of(parse_complete_multipart, wrap.format(part.format(0)).encode()) == "InvalidArgument"
    assert code_of(parse_complete_multipart, wrap.format(part.format(10001)).encode()) == "InvalidArgument"
    assert code_of(parse_complete_multipart, wrap.format(part.format("x")).encode()) == "MalformedXML"
    assert code_of(parse_complete_multipart, wrap.format("").encode()) == "MalformedXML"
    no_etag = wrap.format("<Part><PartNumber>1</PartNumber></Part>").encode()
    assert code_of(parse_complete_multipart, no_etag) == "MalformedXML"
    assert code_of(parse_complete_multipart, b"") == "MalformedXML"


def test_create_bucket():
    assert parse_create_bucket(b"") is None
    assert parse_create_bucket(b"  \r\n") is None
    body = (f"<CreateBucketConfiguration{NS}><LocationConstraint>us-east-1</LocationConstraint>"
            "</CreateBucketConfiguration>")
    assert parse_create_bucket(body.encode()) == "us-east-1"
    assert parse_create_bucket(b"<CreateBucketConfiguration><LocationConstraint/></CreateBucketConfiguration>") is None
    assert parse_create_bucket(b"<CreateBucketConfiguration/>") is None
    assert code_of(parse_create_bucket, b"<Other/>") == "MalformedXML"
    assert code_of(parse_create_bucket, b"not xml") == "MalformedXML"


def test_access_control_policy_grants():
    from s3gw.s3.wire.xml_in import parse_access_control_policy
    body = (b'<AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>s3gw</ID>'
            b'</Owner><AccessControlList><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-'
            b'instance" xsi:type="CanonicalUser"><ID>bob</ID></Grantee><Permission>READ</Permission>'
            b'</Grant><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            b'xsi:type="Group"><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee>'
            b'<Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>')
    assert parse_access_control_policy(body) == [
        ("CanonicalUser", "bob", "READ"),
        ("Group", "http://acs.amazonaws.com/groups/global/AllUsers", "READ")]
    for bad in (b"<not xml", b"<AccessControlPolicy/>",
                b"<AccessControlPolicy><AccessControlList><Grant><Permission>READ</Permission>"
                b"</Grant></AccessControlList></AccessControlPolicy>",
                b"<AccessControlPolicy><AccessControlList><Grant><Grantee><ID>x</ID></Grantee>"
                b"<Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>"):
        assert code_of(parse_access_control_policy, bad) == "MalformedACLError"
