"""The pure check of headers s3gw refuses rather than ignores (s3gw/s3/unsupported.py)."""

import pytest

from s3gw.http.headers import Headers
from s3gw.s3.wire import unsupported
from s3gw.s3.wire.errors import S3Error


def outcome(operation, **headers):
    h = Headers([(k.replace("_", "-"), v) for k, v in headers.items()])
    assert h.has_any(unsupported.HEADERS) == bool(headers)
    try:
        unsupported.check(operation, h)
    except S3Error as e:
        return e.code
    return "ok"


@pytest.mark.parametrize("operation, headers, expected", [
    ("PutObject", {"x_amz_server_side_encryption": "AES256"}, "NotImplemented"),
    ("PutObject", {"x_amz_server_side_encryption": "aws:kms:dsse"}, "NotImplemented"),
    ("PutObject", {"x_amz_server_side_encryption": "aes256"}, "InvalidArgument"),
    ("CopyObject", {"x_amz_server_side_encryption_aws_kms_key_id": "k"}, "NotImplemented"),
    ("CreateMultipartUpload", {"x_amz_server_side_encryption_bucket_key_enabled": "true"},
     "NotImplemented"),
    ("PutObject", {"x_amz_server_side_encryption_customer_algorithm": "AES256"},
     "NotImplemented"),
    ("UploadPart", {"x_amz_server_side_encryption_customer_key": "a2V5"}, "NotImplemented"),
    ("UploadPartCopy", {"x_amz_server_side_encryption_customer_key_md5": "x"}, "NotImplemented"),
    ("GetObject", {"x_amz_server_side_encryption_customer_algorithm": "AES256"},
     "InvalidRequest"),
    ("HeadObject", {"x_amz_server_side_encryption_customer_key": "a2V5"}, "InvalidRequest"),
    ("CopyObject", {"x_amz_copy_source_server_side_encryption_customer_algorithm": "AES256"},
     "InvalidRequest"),
    ("UploadPartCopy", {"x_amz_copy_source_server_side_encryption_customer_key": "a2V5"},
     "InvalidRequest"),
    ("PutObject", {"x_amz_object_lock_mode": "GOVERNANCE"}, "InvalidRequest"),
    ("CreateMultipartUpload", {"x_amz_object_lock_legal_hold": "ON"}, "InvalidRequest"),
    ("PutObject", {"x_amz_tagging": "a=b"}, "NotImplemented"),
    ("PutObject", {"x_amz_tagging": ""}, "ok"),
    ("PutObject", {"x_amz_write_offset_bytes": "0"}, "NotImplemented"),
    ("PutObject", {"x_amz_storage_class": "GLACIER_IR"}, "ok"),
    ("CopyObject", {"x_amz_storage_class": "STANDARD"}, "ok"),
    ("PutObject", {"x_amz_storage_class": "standard"}, "InvalidStorageClass"),
    # headers that mean nothing to an operation are left to it
    ("GetObject", {"x_amz_server_side_encryption": "AES256"}, "ok"),
    ("UploadPart", {"x_amz_tagging": "a=b"}, "ok"),
    ("ListObjectsV2", {"x_amz_server_side_encryption_customer_key": "a2V5"}, "ok"),
    ("PutObject", {}, "ok"),
])
def test_outcomes(operation, headers, expected):
    assert outcome(operation, **headers) == expected


def test_the_refusal_names_what_was_asked():
    h = Headers([("x-amz-server-side-encryption", "bogus")])
    with pytest.raises(S3Error) as e:
        unsupported.check("PutObject", h)
    assert e.value.status == 400 and e.value.fields == {"ArgumentName": "x-amz-server-side-encryption",
                                                        "ArgumentValue": "bogus"}
    h = Headers([("x-amz-server-side-encryption", "aws:kms")])
    with pytest.raises(S3Error) as e:
        unsupported.check("PutObject", h)
    assert e.value.status == 501 and "aws:kms" in e.value.message
