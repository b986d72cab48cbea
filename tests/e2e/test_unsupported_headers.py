"""Headers that ask for encryption, tags, object lock or appends are refused, never ignored
(s3gw/s3/unsupported.py), and the refused write leaves nothing behind."""

import base64
import hashlib
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError


def error_of(exc_info):
    r = exc_info.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


SSE_C_KEY = b"k" * 32
SSE_C = dict(SSECustomerAlgorithm="AES256", SSECustomerKey=SSE_C_KEY.decode())


def _absent(s3, bucket, key):
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key=key)
    return e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def _raw(server, method, path, headers, body=b""):
    req = urllib.request.Request(server.endpoint + path, data=body if method == "PUT" else None,
                                 method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.mark.parametrize("extra", [
    dict(SSE_C),
    dict(ServerSideEncryption="AES256"),
    dict(ServerSideEncryption="aws:kms", SSEKMSKeyId="alias/x"),
    dict(Tagging="team=data"),
    dict(WriteOffsetBytes=0),
], ids=["sse-c", "sse-s3", "sse-kms", "tagging", "append"])
def test_put_object_refused_not_implemented(s3, bucket, extra):
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k", Body=b"secret", **extra)
    assert error_of(e) == ("NotImplemented", 501)
    assert _absent(s3, bucket, "k")


def test_object_lock_headers_refused_as_aws_does_without_lock_configuration(s3, bucket):
    import datetime
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", ObjectLockMode="COMPLIANCE",
                      ObjectLockRetainUntilDate=datetime.datetime(2030, 1, 1))
    assert error_of(e) == ("InvalidRequest", 400)
    assert "Object Lock" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", ObjectLockLegalHoldStatus="ON")
    assert error_of(e) == ("InvalidRequest", 400)
    assert _absent(s3, bucket, "k")


def test_multipart_and_copy_refuse_them_too(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.create_multipart_upload(Bucket=bucket, Key="m", ServerSideEncryption="AES256")
    assert error_of(e) == ("NotImplemented", 501)
    with pytest.raises(ClientError) as e:
        s3.create_multipart_upload(Bucket=bucket, Key="m", Tagging="a=b")
    assert error_of(e) == ("NotImplemented", 501)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []

    up = s3.create_multipart_upload(Bucket=bucket, Key="m")["UploadId"]
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="m", UploadId=up, PartNumber=1, Body=b"x", **SSE_C)
    assert error_of(e) == ("NotImplemented", 501)
    assert s3.list_parts(Bucket=bucket, Key="m", UploadId=up).get("Parts", []) == []
    s3.abort_multipart_upload(Bucket=bucket, Key="m", UploadId=up)

    s3.put_object(Bucket=bucket, Key="src", Body=b"plain")
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"},
                       ServerSideEncryption="AES256")
    assert error_of(e) == ("NotImplemented", 501)
    # naming a key for the (unencrypted) source: what AWS answers for an unencrypted object
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"},
                       CopySourceSSECustomerAlgorithm="AES256",
                       CopySourceSSECustomerKey=SSE_C_KEY.decode())
    assert error_of(e) == ("InvalidRequest", 400)
    assert _absent(s3, bucket, "dst")


def test_reads_with_a_customer_key_are_told_the_object_is_not_encrypted(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"plain")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k", **SSE_C)
    assert error_of(e) == ("InvalidRequest", 400)
    assert "not applicable" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="k", **SSE_C)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"plain"


def test_storage_classes_aws_defines_are_stored_as_standard(s3, bucket, server):
    s3.put_object(Bucket=bucket, Key="ia", Body=b"x", StorageClass="STANDARD_IA")
    s3.put_object(Bucket=bucket, Key="std", Body=b"y", StorageClass="STANDARD")
    listed = {o["Key"]: o["StorageClass"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert listed == {"ia": "STANDARD", "std": "STANDARD"}
    assert s3.get_object(Bucket=bucket, Key="ia")["Body"].read() == b"x"

    status, body = _raw(server, "PUT", f"/{bucket}/bad", {"x-amz-storage-class": "FOO"}, b"z")
    assert status == 400 and b"<Code>InvalidStorageClass</Code>" in body
    assert b"<StorageClassRequested>FOO</StorageClassRequested>" in body
    assert _absent(s3, bucket, "bad")


def test_unknown_encryption_algorithm_is_an_invalid_argument(s3, bucket, server):
    status, body = _raw(server, "PUT", f"/{bucket}/k", {"x-amz-server-side-encryption": "bogus"},
                        b"z")
    assert status == 400 and b"<Code>InvalidArgument</Code>" in body
    assert b"<ArgumentValue>bogus</ArgumentValue>" in body
    # an empty tag set asks for nothing: accepted
    status, _ = _raw(server, "PUT", f"/{bucket}/k", {"x-amz-tagging": ""}, b"z")
    assert status == 200


def test_aws_cli_sse_upload_fails_clearly_and_a_plain_one_works(aws, bucket, tmp_path):
    f = tmp_path / "f.txt"
    f.write_bytes(b"hello")
    proc = aws("s3", "cp", str(f), f"s3://{bucket}/f.txt", "--sse", "AES256", check=False)
    assert proc.returncode != 0 and "NotImplemented" in proc.stderr
    aws("s3", "cp", str(f), f"s3://{bucket}/f.txt")
    out = tmp_path / "back.txt"
    aws("s3", "cp", f"s3://{bucket}/f.txt", str(out))
    assert hashlib.md5(out.read_bytes()).digest() == hashlib.md5(b"hello").digest()


def test_sse_c_key_md5_alone_is_refused(s3, bucket, server):
    md5 = base64.b64encode(hashlib.md5(SSE_C_KEY).digest()).decode()
    status, body = _raw(server, "PUT", f"/{bucket}/k",
                        {"x-amz-server-side-encryption-customer-key-MD5": md5}, b"z")
    assert status == 501 and b"<Code>NotImplemented</Code>" in body
    assert _absent(s3, bucket, "k")
