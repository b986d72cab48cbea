import pytest

from s3gw.s3.translate import to_s3_error
from s3gw.s3.wire.errors import ERRORS, S3Error, error_xml, status_of

REQUIRED = {
    "AccessDenied": 403, "BadDigest": 400, "BucketAlreadyOwnedByYou": 409, "BucketNotEmpty": 409,
    "EntityTooSmall": 400, "EntityTooLarge": 400, "IncompleteBody": 400, "InternalError": 500,
    "InvalidArgument": 400, "InvalidBucketName": 400, "InvalidDigest": 400, "InvalidPart": 400,
    "InvalidPartOrder": 400, "InvalidRange": 416, "InvalidRequest": 400, "KeyTooLongError": 400,
    "MalformedXML": 400, "MethodNotAllowed": 405, "MissingContentLength": 411, "NoSuchBucket": 404,
    "NoSuchKey": 404, "NoSuchUpload": 404, "NoSuchVersion": 404, "NotImplemented": 501,
    "PreconditionFailed": 412, "NotModified": 304, "RequestTimeout": 400, "SignatureDoesNotMatch": 403,
    "InvalidAccessKeyId": 403, "AuthorizationHeaderMalformed": 400, "RequestTimeTooSkewed": 403,
    "XAmzContentSHA256Mismatch": 400, "ServiceUnavailable": 503, "SlowDown": 503,
    "NoSuchCORSConfiguration": 404, "NoSuchBucketPolicy": 404, "NoSuchTagSet": 404,
    "NoSuchLifecycleConfiguration": 404, "InvalidObjectState": 403, "OperationAborted": 409,
    "MetadataTooLarge": 400,
}


@pytest.mark.parametrize("code,status", sorted(REQUIRED.items()))
def test_table(code, status):
    assert ERRORS[code][0] == status == status_of(code) == S3Error(code).status


def test_unknown_code_is_a_bug():
    with pytest.raises(KeyError):
        S3Error("NoSuchThing")
    assert status_of("NoSuchThing") == 500


def test_error_xml_exact():
    err = S3Error("NoSuchKey", key="a&b", bucket_name="master.images")
    assert err.key == "a&b" and err.bucket_name == "master.images" and err.region is None
    assert error_xml(err, "/master.images/a&b", "R1") == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>'
        b"<Message>The specified key does not exist.</Message><Key>a&amp;b</Key>"
        b"<BucketName>master.images</BucketName><Resource>/master.images/a&amp;b</Resource>"
        b"<RequestId>R1</RequestId></Error>"
    )


def test_error_xml_region_and_resource_override():
    err = S3Error("AuthorizationHeaderMalformed", "bad <region>", region="us-east-1", resource="/x")
    assert error_xml(err, "/ignored", "R2") == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AuthorizationHeaderMalformed</Code>'
        b"<Message>bad &lt;region&gt;</Message><Region>us-east-1</Region><Resource>/x</Resource>"
        b"<RequestId>R2</RequestId></Error>"
    )


def test_not_modified_has_no_body():
    assert not S3Error("NotModified").has_body
    assert S3Error("NoSuchKey").has_body


def test_translation_never_leaks_text():
    err = to_s3_error(RuntimeError("secret path /etc/x"))
    assert err.code == "InternalError" and "secret" not in err.message
    same = S3Error("NoSuchBucket")
    assert to_s3_error(same) is same


def test_lower_error_table_is_keyed_by_class():
    from s3gw.pfs.model import NoSuchRepo
    from s3gw.s3.translate import LOWER_ERRORS

    class Sub(NoSuchRepo):
        s3_fields = {"bucket_name": "x"}

    err = to_s3_error(Sub())
    assert (err.code, err.bucket_name) == ("NoSuchBucket", "x")
    assert all(isinstance(cls, type) and issubclass(cls, BaseException) for cls in LOWER_ERRORS)
    assert all(code in ERRORS for code in LOWER_ERRORS.values())

    class NoSuchFile(Exception):     # the same name, another class: not translated
        pass

    assert to_s3_error(NoSuchFile()).code == "InternalError"
