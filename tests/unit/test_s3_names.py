import pytest

from s3gw.s3.wire.errors import S3Error
from s3gw.s3.wire.names import BucketRef, bucket_name, parse_bucket, parse_copy_source, validate_key

C = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    "name,ref",
    [
        ("images", BucketRef("images", "master")),
        ("master.images", BucketRef("images", "master")),
        ("dev-1.my_repo", BucketRef("my_repo", "dev-1")),
        ("Feature.Images", BucketRef("Images", "Feature")),
        (f"{C}.master.images", BucketRef("images", "master", C)),
        (f"{C}.images", BucketRef("images", C)),  # two parts: a branch that looks like a commit
        ("a.b", BucketRef("b", "a")),
        ("x" * 63, BucketRef("x" * 63, "master")),
        (f"{C}.{'b' * 30}.{'r' * 32}", BucketRef("r" * 32, "b" * 30, C)),
    ],
)
def test_parse_bucket(name, ref):
    assert parse_bucket(name) == ref
    assert parse_bucket(name).read_only == (ref.commit is not None)


@pytest.mark.parametrize(
    "name",
    ["", "ab", "x" * 64, "a..b", ".images", "images.", "a.b.c", f"{C[:-1]}.master.images",
     f"{C.upper()}.master.images", "-dev.images", "dev-.images", "a b.images", "a.b.c.d",
     "ma/ster.images", "\u00fc.images", f"{C}.{'b' * 31}.{'r' * 32}"],
)
def test_invalid_bucket(name):
    with pytest.raises(S3Error) as ei:
        parse_bucket(name)
    assert ei.value.code == "InvalidBucketName" and ei.value.status == 400


def test_bucket_name():
    assert bucket_name("images", "master") == "master.images"
    assert bucket_name("images", "dev", C) == f"{C}.dev.images"
    with pytest.raises(S3Error):
        bucket_name("im.ages", "master")


@pytest.mark.parametrize("key", ["a", "../../etc/passwd", "a//b", "/lead", "trail/", ".",
                                 "\u00fc" * 512, "k" * 1024, "a\nb"])
def test_valid_keys(key):
    assert validate_key(key) == key


@pytest.mark.parametrize(
    "key,code",
    [("", "InvalidArgument"), ("a\x00b", "InvalidArgument"), ("k" * 1025, "KeyTooLongError"),
     ("\u00fc" * 513, "KeyTooLongError"), ("\ud800", "InvalidArgument")],
)
def test_invalid_keys(key, code):
    with pytest.raises(S3Error) as ei:
        validate_key(key)
    assert ei.value.code == code and ei.value.status == 400


@pytest.mark.parametrize(
    "value,bucket,key,version",
    [
        ("b/k", "b", "k", None),
        ("/b/a%20b%2Bc+d", "b", "a b+c+d", None),
        ("b/a@,;:$=&x", "b", "a@,;:$=&x", None),  # rclone leaves these raw
        ("/master.images/dir/f%C3%BC?versionId=HEAD%5E", "master.images", "dir/f\u00fc", "HEAD^"),
        ("b/what%3Fnot?versionId=", "b", "what?not", None),
        ("b/a/b/", "b", "a/b/", None),
        # the whole value escaped (JS encodeURIComponent, AWS's Java example): %2F separates
        ("master.data%2Fdir%2Fa%20b%2B%25.txt", "master.data", "dir/a b+%.txt", None),
        ("%2Fb%2Fk?versionId=HEAD", "b", "k", "HEAD"),
    ],
)
def test_copy_source(value, bucket, key, version):
    src = parse_copy_source(value)
    assert (src.bucket, src.key, src.version_id) == (bucket, key, version)


@pytest.mark.parametrize("value", ["b", "/b", "b/", "/", "", "b/%FF"])
def test_bad_copy_source(value):
    with pytest.raises(S3Error) as ei:
        parse_copy_source(value)
    assert ei.value.code == "InvalidArgument"


def test_copy_source_raw_utf8_as_latin1_header_text():
    # the http layer hands header values over as latin-1 text
    value = "b/f\u00fc".encode("utf-8").decode("latin-1")
    assert parse_copy_source(value).key == "f\u00fc"
