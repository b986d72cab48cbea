"""Authentication end to end (issue 6): signatures, presigned URLs and signed bodies.

Against a gateway with auth on (``world`` in auth_helpers.py): anonymous, unknown-key and
wrong-secret requests, special-character keys, any region in the scope, clock skew,
presigned URLs (SigV4 and boto3's default SigV2) fetched with urllib and then tampered or
expired, SigV2 header auth (botocore and s3cmd's x-amz-date form), the payload hash on
object and XML bodies, streaming-signed uploads (STREAMING-AWS4-HMAC-SHA256-PAYLOAD
[-TRAILER]) framed by hand over a raw socket with the chunk signatures computed in
auth_helpers.py from the AWS specification (not with s3gw's signer), requests refused
before their body, unsigned x-amz-* headers, dot segments, and malformed credentials
(always a clean 4xx).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import re
import socket
import time
import urllib.request
import zlib

import pytest

from tests.e2e.auth_helpers import (  # noqa: F401 (world: a fixture)
    Creds,
    chunk_signatures,
    denied,
    error_code,
    frozen_botocore_clock,
    http_request,
    raw_request,
    seed_signature,
    sign_v2,
    sign_v4,
    sign_v4_raw,
    split_chunks,
    streaming_body,
    streaming_length,
    trailer_signature,
    utcnow,
    world,
)
from tests.e2e.rawhttp import read_response

MiB = 1 << 20


# --------------------------------------------------------------------------- signatures

def test_anonymous_requests_are_denied(world):
    repo = world.repo()
    for url, method in [(f"{world.endpoint}/", "GET"), (f"{world.endpoint}/master.{repo}", "GET"),
                        (f"{world.endpoint}/master.{repo}/a.txt", "GET")]:
        status, body = http_request(url, method)
        assert status == 403 and error_code(body) == "AccessDenied", (url, body)
        assert body.startswith(b"<?xml")
    status, body = http_request(f"{world.endpoint}/master.{repo}/a.txt", "PUT", b"anon")
    assert status == 403 and error_code(body) == "AccessDenied"
    anon = world.client(None)
    denied(lambda: anon.list_objects_v2(Bucket=f"master.{repo}"))
    denied(lambda: anon.head_object(Bucket=f"master.{repo}", Key="a.txt"), code=None)
    assert world.s3.get_object(Bucket=f"master.{repo}", Key="a.txt")["Body"].read() == b"alpha"


SPECIAL_KEY = "dir/a b+c ü&=;:@$,!*'()~%.txt"


@pytest.mark.parametrize("sv", ["s3v4", "s3"])
def test_special_character_keys_and_signed_query_params(world, sv):
    repo = world.repo(objects={}, will="writer")
    b = f"master.{repo}"
    c = world.client(world.users["will"], sv)
    c.put_object(Bucket=b, Key=SPECIAL_KEY, Body=b"special")
    assert c.get_object(Bucket=b, Key=SPECIAL_KEY)["Body"].read() == b"special"
    assert c.head_object(Bucket=b, Key=SPECIAL_KEY)["ContentLength"] == 7
    url = c.generate_presigned_url("get_object", Params={"Bucket": b, "Key": SPECIAL_KEY})
    assert http_request(url) == (200, b"special")
    url = c.generate_presigned_url("head_object", Params={"Bucket": b, "Key": SPECIAL_KEY})
    assert http_request(url, "HEAD")[0] == 200
    url = c.generate_presigned_url("get_object", Params={
        "Bucket": b, "Key": SPECIAL_KEY, "ResponseContentDisposition": 'attachment; filename="x y.txt"',
        "ResponseContentType": "text/x-special"})
    req = urllib.request.Request(url)
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.read() == b"special"
        assert resp.headers["Content-Disposition"] == 'attachment; filename="x y.txt"'
        assert resp.headers["Content-Type"] == "text/x-special"
    # the response-* overrides are signed: changing one breaks the signature
    status, body = http_request(url.replace("text%2Fx-special", "text%2Fhtml"))
    assert status == 403 and error_code(body) == "SignatureDoesNotMatch", body
    # last: a bucket-level request (see test_sigv2_header_auth_bucket_operations for SigV2)
    assert [o["Key"] for o in c.list_objects_v2(Bucket=b, Prefix="dir/a b+")["Contents"]] == [SPECIAL_KEY]


def test_unknown_key_and_wrong_secret(world):
    r = denied(lambda: world.client(Creds("x", "AKNOSUCHKEY0000000", "whatever")).list_buckets(),
               code="InvalidAccessKeyId")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 403
    bad = world.admin.with_secret(world.admin.secret_key[:-1] + ("A" if world.admin.secret_key[-1] != "A" else "B"))
    r = denied(lambda: world.client(bad).list_buckets(), code="SignatureDoesNotMatch")
    assert r["Error"].get("StringToSign", "").startswith("AWS4-HMAC-SHA256\n"), r["Error"]
    r = denied(lambda: world.client(bad, "s3").list_buckets(), code="SignatureDoesNotMatch")
    assert r["Error"].get("StringToSign", "").startswith("GET\n"), r["Error"]


@pytest.mark.parametrize("region", ["US", "eu-central-1"])
def test_any_region_in_the_scope_is_accepted(world, region):
    repo = world.repo(will="writer")
    c = world.client(world.users["will"], region=region)
    c.put_object(Bucket=f"master.{repo}", Key="r.txt", Body=region.encode())
    assert c.get_object(Bucket=f"master.{repo}", Key="r.txt")["Body"].read() == region.encode()
    url = c.generate_presigned_url("get_object", Params={"Bucket": f"master.{repo}", "Key": "r.txt"})
    assert f"%2F{region}%2Fs3%2F" in url
    assert http_request(url) == (200, region.encode())


def test_clock_skew(world):
    c = world.client(world.admin)
    cv2 = world.client(world.admin, "s3")
    for minutes in (-20, 20):
        with frozen_botocore_clock(utcnow() + dt.timedelta(minutes=minutes)):
            denied(c.list_buckets, code="RequestTimeTooSkewed")
            denied(cv2.list_buckets, code="RequestTimeTooSkewed")
    with frozen_botocore_clock(utcnow() - dt.timedelta(minutes=5)):
        c.list_buckets()
        cv2.list_buckets()
    # a raw request with an old X-Amz-Date, signed by botocore
    url = f"{world.endpoint}/"
    headers = sign_v4(world.admin, "GET", url, {}, when=utcnow() - dt.timedelta(hours=1))
    status, _, body = raw_request(world.server.port, "GET", "/", headers)
    assert status == 403 and error_code(body) == "RequestTimeTooSkewed", body


def test_header_and_query_auth_together_are_refused(world):
    # AWS: 400 InvalidArgument "Only one auth mechanism allowed"
    repo = world.repo()
    path = f"/master.{repo}/a.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00"
    headers = sign_v4(world.admin, "GET", f"{world.endpoint}{path}", {})
    status, _, body = raw_request(world.server.port, "GET", path, headers)
    assert status == 400 and error_code(body) == "InvalidArgument", body
    assert b"Only one auth mechanism allowed" in body


def test_presigned_sigv4(world):
    repo = world.repo(rita="reader")
    b = f"master.{repo}"
    c = world.client(world.admin)
    url = c.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "a.txt"}, ExpiresIn=300)
    assert "X-Amz-Signature=" in url
    assert http_request(url) == (200, b"alpha")
    assert http_request(url, "HEAD")[0] == 403  # signed for GET
    # tampered: signature, key, expiry
    sig = re.search(r"X-Amz-Signature=([0-9a-f]+)", url).group(1)
    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    status, body = http_request(url.replace(sig, flipped))
    assert status == 403 and error_code(body) == "SignatureDoesNotMatch"
    status, body = http_request(url.replace("/a.txt?", "/b.txt?"))
    assert status == 403 and error_code(body) == "SignatureDoesNotMatch"
    status, body = http_request(url.replace("X-Amz-Expires=300", "X-Amz-Expires=3000"))
    assert status == 403 and error_code(body) == "SignatureDoesNotMatch"
    with frozen_botocore_clock(utcnow() - dt.timedelta(hours=1)):
        old = c.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "a.txt"}, ExpiresIn=60)
    status, body = http_request(old)
    assert status == 403 and error_code(body) == "AccessDenied" and b"expired" in body.lower(), body
    week = c.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "a.txt"}, ExpiresIn=7 * 86400)
    assert http_request(week) == (200, b"alpha")
    status, body = http_request(week.replace(f"X-Amz-Expires={7 * 86400}", f"X-Amz-Expires={7 * 86400 + 1}"))
    assert status in (400, 403), (status, body)  # at most 7 days, whatever the signature says
    too_long = c.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "a.txt"},
                                        ExpiresIn=7 * 86400 + 1)
    status, body = http_request(too_long)
    assert status in (400, 403) and error_code(body) in ("AuthorizationQueryParametersError", "AccessDenied"), body
    # dated in the future: not a way around the 7 days
    with frozen_botocore_clock(utcnow() + dt.timedelta(days=30)):
        future = c.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "a.txt"}, ExpiresIn=3600)
    status, body = http_request(future)
    assert status == 403, (status, body)
    # presigned PUT carries the signer's rights: the admin's works, the reader's does not
    put = c.generate_presigned_url("put_object", Params={"Bucket": b, "Key": "up.txt"}, ExpiresIn=300)
    assert http_request(put, "PUT", b"uploaded")[0] == 200
    assert world.s3.get_object(Bucket=b, Key="up.txt")["Body"].read() == b"uploaded"
    rput = world.client(world.users["rita"]).generate_presigned_url(
        "put_object", Params={"Bucket": b, "Key": "up.txt"}, ExpiresIn=300)
    status, body = http_request(rput, "PUT", b"by reader")
    assert status == 403 and error_code(body) == "AccessDenied"
    assert world.s3.get_object(Bucket=b, Key="up.txt")["Body"].read() == b"uploaded"


def test_presigned_sigv2_boto3_default(world):
    import boto3
    from botocore.config import Config
    repo = world.repo()
    b = f"master.{repo}"
    c = boto3.session.Session().client(
        "s3", endpoint_url=world.endpoint, region_name="us-east-1",
        aws_access_key_id=world.admin.access_key, aws_secret_access_key=world.admin.secret_key,
        config=Config(s3={"addressing_style": "path"}))  # no signature_version: boto3's default
    try:
        url = c.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "a.txt"})
        assert "AWSAccessKeyId=" in url and "Signature=" in url and "Expires=" in url, url
        assert http_request(url) == (200, b"alpha")
        sig = re.search(r"Signature=([^&]+)", url).group(1)
        status, body = http_request(url.replace(sig, "A" + sig[1:] if sig[0] != "A" else "B" + sig[1:]))
        assert status == 403 and error_code(body) == "SignatureDoesNotMatch"
        expires = re.search(r"Expires=(\d+)", url).group(1)
        status, body = http_request(url.replace(expires, str(int(expires) + 1000)))
        assert status == 403 and error_code(body) == "SignatureDoesNotMatch"
        with frozen_botocore_clock(utcnow() - dt.timedelta(hours=2)):
            old = c.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "a.txt"}, ExpiresIn=60)
        assert int(re.search(r"Expires=(\d+)", old).group(1)) < time.time() - 3600
        status, body = http_request(old)
        assert status == 403 and error_code(body) == "AccessDenied" and b"expired" in body.lower(), body
    finally:
        c.close()


def test_sigv2_header_auth(world):
    repo = world.repo(rita="reader", will="writer")
    b = f"master.{repo}"
    will = world.client(world.users["will"], "s3")
    will.put_object(Bucket=b, Key="v2 key+plus.txt", Body=b"signed v2")
    assert will.get_object(Bucket=b, Key="v2 key+plus.txt")["Body"].read() == b"signed v2"
    assert will.head_object(Bucket=b, Key="v2 key+plus.txt")["ContentLength"] == 9
    mp = will.create_multipart_upload(Bucket=b, Key="mp2")["UploadId"]
    part = will.upload_part(Bucket=b, Key="mp2", UploadId=mp, PartNumber=1, Body=b"p")
    will.complete_multipart_upload(Bucket=b, Key="mp2", UploadId=mp, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    will.delete_object(Bucket=b, Key="mp2")
    will.copy_object(Bucket=b, Key="copied v2.txt", CopySource={"Bucket": b, "Key": "v2 key+plus.txt"})
    assert will.get_object(Bucket=b, Key="copied v2.txt")["Body"].read() == b"signed v2"
    rita = world.client(world.users["rita"], "s3")
    assert rita.get_object(Bucket=b, Key="a.txt")["Body"].read() == b"alpha"
    before = world.state(repo)
    denied(lambda: rita.put_object(Bucket=b, Key="a.txt", Body=b"no"))
    denied(lambda: world.client(world.users["rita"].with_secret("wrong"), "s3").get_object(
        Bucket=b, Key="a.txt"), code="SignatureDoesNotMatch")
    denied(lambda: world.client(Creds("x", "AKNOSUCHKEY0000000", "x"), "s3").list_buckets(),
           code="InvalidAccessKeyId")
    assert world.state(repo) == before


def test_sigv2_header_auth_bucket_operations(world):
    """botocore's SigV2 signs a bucket-level request sent as ``/bucket`` with the
    CanonicalizedResource ``/bucket/`` (its ``auth_path``); AWS accepts that."""
    repo = world.repo(rita="reader", will="writer")
    b = f"master.{repo}"
    will = world.client(world.users["will"], "s3")
    assert [o["Key"] for o in will.list_objects(Bucket=b)["Contents"]] == ["a.txt", "b.txt"]
    assert [o["Key"] for o in will.list_objects_v2(Bucket=b)["Contents"]] == ["a.txt", "b.txt"]
    will.head_bucket(Bucket=b)
    will.get_bucket_location(Bucket=b)
    r = will.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "b.txt"}]})
    assert not r.get("Errors")
    will.create_bucket(Bucket=f"dev.{repo}")
    denied(lambda: will.delete_bucket(Bucket=f"dev.{repo}"))
    world.client(world.admin, "s3").delete_bucket(Bucket=f"dev.{repo}")
    assert f"dev.{repo}" not in {x["Name"] for x in world.s3.list_buckets()["Buckets"]}
    url = world.client(world.users["rita"], "s3").generate_presigned_url("list_objects", Params={"Bucket": b})
    status, body = http_request(url)
    assert status == 200 and b"<Key>a.txt</Key>" in body, body


def test_sigv2_x_amz_date_in_rfc_2822_form(world):
    """s3cmd --signature-v2 sends no Date but ``x-amz-date: Thu, 26 Nov 2026 12:15:00 +0000``
    (signed among the x-amz- headers, with an empty Date line)."""
    repo = world.repo(rita="reader")
    now = dt.datetime.now(dt.timezone.utc)
    results = {}
    for date in (now.strftime("%a, %d %b %Y %H:%M:%S GMT"), now.strftime("%a, %d %b %Y %H:%M:%S +0000")):
        headers = {"Host": f"127.0.0.1:{world.server.port}", "x-amz-date": date}
        headers["Authorization"] = sign_v2(world.users["rita"], "GET", f"/master.{repo}/a.txt", headers)
        status, _, body = raw_request(world.server.port, "GET", f"/master.{repo}/a.txt", headers)
        results[date] = (status, body if status != 200 else body.decode())
    assert all(r == (200, "alpha") for r in results.values()), results
    old = (now - dt.timedelta(minutes=30)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    headers = {"Host": f"127.0.0.1:{world.server.port}", "x-amz-date": old}
    headers["Authorization"] = sign_v2(world.users["rita"], "GET", f"/master.{repo}/a.txt", headers)
    status, _, body = raw_request(world.server.port, "GET", f"/master.{repo}/a.txt", headers)
    assert status == 403 and error_code(body) == "RequestTimeTooSkewed", body


# --------------------------------------------------------------------------- payloads

def _signed_put(world, creds, b, key, body, payload_hash=None, send_body=None, extra=None):
    url = f"{world.endpoint}/{b}/{key}"
    headers = sign_v4(creds, "PUT", url, {"Content-Length": str(len(body)), **(extra or {})}, body,
                      payload_hash=payload_hash)
    return raw_request(world.server.port, "PUT", f"/{b}/{key}", headers,
                       body if send_body is None else send_body)


def test_payload_hash_is_checked(world):
    repo = world.repo(objects={})
    b = f"master.{repo}"
    status, _, body = _signed_put(world, world.admin, b, "ok.txt", b"good data")
    assert status == 200, body
    # a valid signature over the hash of other bytes: the body does not match its hash
    status, _, body = _signed_put(world, world.admin, b, "bad.txt", b"good data", send_body=b"evil data")
    assert status == 400 and error_code(body) == "XAmzContentSHA256Mismatch", body
    status, _, body = _signed_put(world, world.admin, b, "ok.txt", b"good data", send_body=b"evil data")
    assert status == 400 and error_code(body) == "XAmzContentSHA256Mismatch", body
    assert world.state(repo)[b] == {"ok.txt": b"good data"}
    status, _, body = _signed_put(world, world.admin, b, "unsigned.txt", b"any bytes",
                                  payload_hash="UNSIGNED-PAYLOAD")
    assert status == 200, body
    assert world.s3.get_object(Bucket=b, Key="unsigned.txt")["Body"].read() == b"any bytes"


def test_unsigned_trailer_body_with_a_signed_header(world):
    """What botocore sends over https: STREAMING-UNSIGNED-PAYLOAD-TRAILER, the header signed."""
    repo = world.repo(objects={}, will="writer")
    b = f"master.{repo}"
    data = os.urandom(70_000)
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    body = b"".join(f"{len(data[i:i + 65536]):x}\r\n".encode() + data[i:i + 65536] + b"\r\n"
                    for i in range(0, len(data), 65536))
    body += f"0\r\nx-amz-checksum-crc32:{crc}\r\n\r\n".encode()
    headers = {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data)),
               "x-amz-trailer": "x-amz-checksum-crc32", "Content-Length": str(len(body))}
    signed = sign_v4(world.users["will"], "PUT", f"{world.endpoint}/{b}/t.bin", headers,
                     payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    status, _, resp = raw_request(world.server.port, "PUT", f"/{b}/t.bin", signed, body)
    assert status == 200, resp
    assert world.s3.get_object(Bucket=b, Key="t.bin")["Body"].read() == data
    # the same by a user without a role there: refused, nothing stored
    signed = sign_v4(world.users["rita"], "PUT", f"{world.endpoint}/{b}/r.bin", headers,
                     payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    status, _, resp = raw_request(world.server.port, "PUT", f"/{b}/r.bin", signed, body)
    assert status == 403 and error_code(resp) == "AccessDenied"
    assert sorted(world.state(repo)[b]) == ["t.bin"]


def test_payload_hash_is_checked_for_xml_bodies(world):
    """A signed DeleteObjects naming a.txt must not delete b.txt when the body is swapped."""
    repo = world.repo(will="writer")
    b = f"master.{repo}"
    def delete_xml(key):
        return (f'<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>{key}</Key>'
                f'</Object><Quiet>true</Quiet></Delete>').encode()
    signed_for, sent = delete_xml("a.txt"), delete_xml("b.txt")
    assert len(signed_for) == len(sent)
    url = f"{world.endpoint}/{b}?delete="
    headers = sign_v4(world.users["will"], "POST", url, {"Content-Length": str(len(sent)),
                                                         "Content-Type": "application/xml"}, signed_for)
    status, _, body = raw_request(world.server.port, "POST", f"/{b}?delete=", headers, sent)
    assert status == 400 and error_code(body) == "XAmzContentSHA256Mismatch", (status, body)
    assert sorted(world.state(repo)[b]) == ["a.txt", "b.txt"]
    status, _, body = raw_request(world.server.port, "POST", f"/{b}?delete=", headers, signed_for)
    assert status == 200, body
    assert sorted(world.state(repo)[b]) == ["b.txt"]


DATA = bytes(range(256)) * 120  # 30720 bytes: 3 chunks of 8 KiB and a short one


def _streaming_put(world, creds, b, key, data, *, tamper=None, trailer=False, region="us-east-1",
                   query=""):
    """PUT ``data`` as STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER] over a raw socket.

    ``tamper``: ``("sig", i)`` alters chunk i's signature, ``("data", i)`` one byte of chunk
    i's data, ``("trailer-sig", None)`` the trailer signature."""
    chunks = split_chunks(data, 8192)
    trailer_lines = None
    if trailer:
        crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
        trailer_lines = f"x-amz-checksum-crc32:{crc}\n".encode()
    marker = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" + ("-TRAILER" if trailer else "")
    headers = {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data)),
               "Content-Length": str(streaming_length(chunks, trailer_lines))}
    if trailer:
        headers["x-amz-trailer"] = "x-amz-checksum-crc32"
    url = f"{world.endpoint}/{b}/{key}" + (f"?{query}" if query else "")
    signed = sign_v4(creds, "PUT", url, headers, payload_hash=marker, region=region)
    ts = signed["X-Amz-Date"]
    sigs = chunk_signatures(creds.secret_key, ts, region, seed_signature(signed), chunks)
    tsig = trailer_signature(creds.secret_key, ts, region, sigs[-1], trailer_lines) if trailer else None
    if tamper and tamper[0] == "sig":
        i = tamper[1]
        sigs[i] = sigs[i][:-1] + ("0" if sigs[i][-1] != "0" else "1")
    if tamper and tamper[0] == "data":
        i = tamper[1]
        chunks[i] = bytes([chunks[i][0] ^ 1]) + chunks[i][1:]
    if tamper and tamper[0] == "trailer-sig":
        tsig = tsig[:-1] + ("0" if tsig[-1] != "0" else "1")
    body = streaming_body(chunks, sigs, trailer_lines, tsig)
    assert len(body) == int(headers["Content-Length"])
    return raw_request(world.server.port, "PUT", f"/{b}/{key}" + (f"?{query}" if query else ""), signed, body)


@pytest.mark.parametrize("trailer", [False, True], ids=["payload", "payload-trailer"])
def test_streaming_signed_upload(world, trailer):
    repo = world.repo(objects={}, will="writer")
    b = f"master.{repo}"
    status, headers, body = _streaming_put(world, world.users["will"], b, "streamed.bin", DATA,
                                           trailer=trailer, region="US")
    assert status == 200, body
    assert headers["etag"] == f'"{hashlib.md5(DATA).hexdigest()}"'
    got = world.s3.get_object(Bucket=b, Key="streamed.bin")
    assert got["Body"].read() == DATA and got["ContentLength"] == len(DATA)


def test_streaming_signed_upload_part(world):
    """minio-go sends its multipart parts as signed aws-chunks too (query string signed)."""
    repo = world.repo(objects={}, will="writer")
    b = f"master.{repo}"
    will = world.client(world.users["will"])
    upload = will.create_multipart_upload(Bucket=b, Key="mp.bin")["UploadId"]
    part1 = os.urandom(5 * MiB)
    status, h1, body = _streaming_put(world, world.users["will"], b, "mp.bin", part1,
                                      query=f"partNumber=1&uploadId={upload}")
    assert status == 200, body
    status, _, body = _streaming_put(world, world.users["will"], b, "mp.bin", DATA, tamper=("sig", 2),
                                     query=f"partNumber=2&uploadId={upload}")
    assert status == 403 and error_code(body) == "SignatureDoesNotMatch", body
    assert [p["PartNumber"] for p in will.list_parts(Bucket=b, Key="mp.bin", UploadId=upload)["Parts"]] == [1]
    status, h2, body = _streaming_put(world, world.users["will"], b, "mp.bin", DATA,
                                      query=f"partNumber=2&uploadId={upload}")
    assert status == 200, body
    will.complete_multipart_upload(Bucket=b, Key="mp.bin", UploadId=upload, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": h1["etag"]}, {"PartNumber": 2, "ETag": h2["etag"]}]})
    assert world.s3.get_object(Bucket=b, Key="mp.bin")["Body"].read() == part1 + DATA


@pytest.mark.parametrize("tamper", [("sig", 1), ("sig", 3), ("sig", 4), ("data", 2), ("trailer-sig", None)],
                         ids=["chunk1-sig", "last-data-chunk-sig", "final-chunk-sig", "chunk2-data",
                              "trailer-sig"])
def test_streaming_bad_chunk_commits_nothing(world, tamper):
    repo = world.repo(objects={"keep.bin": b"old"}, will="writer")
    b = f"master.{repo}"
    before = world.state(repo)
    for key in ("new.bin", "keep.bin"):
        status, _, body = _streaming_put(world, world.users["will"], b, key, DATA, tamper=tamper,
                                         trailer=tamper[0] == "trailer-sig")
        assert status == 403 and error_code(body) == "SignatureDoesNotMatch", (key, status, body)
    assert world.state(repo) == before


def test_manual_sigv4_control(world):
    """The hand-made signer used below is right: a plain GET signed with it works."""
    repo = world.repo(rita="reader")
    h = sign_v4_raw(world.users["rita"], "GET", f"/master.{repo}/a.txt", "",
                    {"Host": f"127.0.0.1:{world.server.port}"}, ["host", "x-amz-content-sha256", "x-amz-date"],
                    hashlib.sha256(b"").hexdigest())
    assert raw_request(world.server.port, "GET", f"/master.{repo}/a.txt", h)[::2] == (200, b"alpha")


def test_dot_segments_do_not_escape_the_signed_bucket(world):
    """A reader of R signs ``/master.R/../master.S/a.txt`` exactly as sent: whatever the
    router makes of it, S's object must not come back."""
    mine = world.repo(rita="reader")
    other = world.repo(objects={"a.txt": b"secret of S"})
    host = f"127.0.0.1:{world.server.port}"
    for path in (f"/master.{mine}/../master.{other}/a.txt", f"/master.{mine}/%2E%2E/master.{other}/a.txt",
                 f"/master.{mine}/./../master.{other}/a.txt", f"/master%2E{other}/a.txt",
                 f"/%6Daster.{other}/a.txt", f"/master.{other}%2Fa.txt", f"//master.{other}/a.txt"):
        h = sign_v4_raw(world.users["rita"], "GET", path, "", {"Host": host},
                        ["host", "x-amz-content-sha256", "x-amz-date"], hashlib.sha256(b"").hexdigest())
        status, _, body = raw_request(world.server.port, "GET", path, h)
        assert b"secret of S" not in body and status != 200, (path, status, body)


def test_copy_source_spellings_cannot_skip_the_read_check(world):
    """A writer of R without a role on S copies S's object into R, the copy source spelt
    every way clients spell it (CLIENTS.md 3.9): never a 2xx, never S's bytes in R."""
    mine = world.repo(objects={}, will="writer")
    other = world.repo(objects={"s.txt": b"secret of S"})
    vid = world.s3.head_object(Bucket=f"master.{other}", Key="s.txt")["VersionId"]
    spellings = [f"master.{other}/s.txt", f"/master.{other}/s.txt", f"master%2E{other}/s.txt",
                 f"{other}/s.txt", f"/{other}/s.txt", f"master.{other}/s.txt?versionId={vid}",
                 f"%2Fmaster.{other}%2Fs.txt", f"master.{other}/./s.txt",
                 f"master.{mine}/../master.{other}/s.txt"]
    results = {}
    for i, source in enumerate(spellings):
        path = f"/master.{mine}/copy{i}.txt"
        h = sign_v4(world.users["will"], "PUT", f"{world.endpoint}{path}",
                    {"x-amz-copy-source": source, "Content-Length": "0"})
        status, _, body = raw_request(world.server.port, "PUT", path, h)
        results[source] = (status, error_code(body))
    assert not [s for s, (status, _) in results.items() if status < 300], results
    assert world.state(mine)[f"master.{mine}"] == {}
    # and UploadPartCopy the same way
    upload = world.client(world.users["will"]).create_multipart_upload(Bucket=f"master.{mine}", Key="mp")["UploadId"]
    for source in spellings[:5]:
        path = f"/master.{mine}/mp"
        q = f"partNumber=1&uploadId={upload}"
        h = sign_v4(world.users["will"], "PUT", f"{world.endpoint}{path}?{q}",
                    {"x-amz-copy-source": source, "Content-Length": "0"})
        status, _, body = raw_request(world.server.port, "PUT", f"{path}?{q}", h)
        assert status >= 400, (source, status, body)
    assert world.s3.list_parts(Bucket=f"master.{mine}", Key="mp", UploadId=upload).get("Parts", []) == []
    # control: with reader on S the same requests copy
    world.cli.grant("will", other, "reader")
    for i, source in enumerate(spellings[:2]):
        path = f"/master.{mine}/ok{i}.txt"
        h = sign_v4(world.users["will"], "PUT", f"{world.endpoint}{path}",
                    {"x-amz-copy-source": source, "Content-Length": "0"})
        status, _, body = raw_request(world.server.port, "PUT", path, h)
        assert status == 200, (source, body)
    assert world.state(mine)[f"master.{mine}"] == {"ok0.txt": b"secret of S", "ok1.txt": b"secret of S"}


def test_grants_do_not_match_by_prefix(world):
    base = world.repo(rita="reader")
    longer = f"{base}x"
    world.s3.create_bucket(Bucket=f"master.{longer}")
    world.s3.put_object(Bucket=f"master.{longer}", Key="a.txt", Body=b"not rita's")
    rita = world.client(world.users["rita"])
    assert rita.get_object(Bucket=f"master.{base}", Key="a.txt")["Body"].read() == b"alpha"
    denied(lambda: rita.get_object(Bucket=f"master.{longer}", Key="a.txt"))
    assert f"master.{longer}" not in {x["Name"] for x in rita.list_buckets()["Buckets"]}


def test_connection_after_a_refused_request_with_a_body(world):
    """A refused PUT whose body was sent without Expect: the body must not be read as the
    next request (either it is drained, or the connection is closed)."""
    repo = world.repo(objects={"a.txt": b"alpha"}, rita="reader")
    port = world.server.port
    smuggled = f"GET /master.{repo}/a.txt HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    put = sign_v4(world.users["rita"], "PUT", f"{world.endpoint}/master.{repo}/p.txt",
                  {"Content-Length": str(len(smuggled))}, smuggled)
    get = sign_v4(world.users["rita"], "GET", f"{world.endpoint}/master.{repo}/a.txt", {})
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        head = "".join(f"{k}: {v}\r\n" for k, v in put.items())
        s.sendall(f"PUT /master.{repo}/p.txt HTTP/1.1\r\n{head}\r\n".encode() + smuggled)
        status, headers, body = read_response(s)
        assert status == 403 and error_code(body) == "AccessDenied", body
        head = "".join(f"{k}: {v}\r\n" for k, v in get.items())
        try:
            s.sendall(f"GET /master.{repo}/a.txt HTTP/1.1\r\n{head}\r\n".encode())
            status, _, body = read_response(s)
        except (ConnectionError, OSError):
            status = None  # closed: fine
        assert status in (None, 200), (status, body)
        if status == 200:
            assert body == b"alpha"
    assert "p.txt" not in world.state(repo)[f"master.{repo}"]


def test_unsigned_x_amz_headers_are_refused(world):
    """S3 requires every x-amz-* header to be signed: a captured signed PutObject must not
    turn into a CopyObject (or change its payload hash) by adding unsigned headers."""
    repo = world.repo(objects={"target.txt": b"original"}, will="writer")
    secret_repo = world.repo(objects={"s.txt": b"secret"}, will="reader")
    b = f"master.{repo}"
    host = f"127.0.0.1:{world.server.port}"
    empty = hashlib.sha256(b"").hexdigest()
    base = {"Host": host, "Content-Length": "0"}
    control = sign_v4_raw(world.users["will"], "PUT", f"/{b}/control.txt", "", base,
                          ["host", "content-length", "x-amz-content-sha256", "x-amz-date"], empty)
    assert raw_request(world.server.port, "PUT", f"/{b}/control.txt", control)[0] == 200
    # x-amz-copy-source added, not signed
    h = sign_v4_raw(world.users["will"], "PUT", f"/{b}/target.txt", "", base,
                    ["host", "content-length", "x-amz-content-sha256", "x-amz-date"], empty)
    h["x-amz-copy-source"] = f"/master.{secret_repo}/s.txt"
    status, _, body = raw_request(world.server.port, "PUT", f"/{b}/target.txt", h)
    assert status == 403, (status, body)
    # x-amz-content-sha256 not signed: the body can be swapped with its hash
    h = sign_v4_raw(world.users["will"], "PUT", f"/{b}/target.txt", "", {"Host": host, "Content-Length": "4"},
                    ["host", "content-length", "x-amz-date"], hashlib.sha256(b"evil").hexdigest())
    status, _, body = raw_request(world.server.port, "PUT", f"/{b}/target.txt", h, b"evil")
    assert status == 403, (status, body)
    assert world.state(repo)[b] == {"target.txt": b"original", "control.txt": b""}


def test_signed_but_unauthorised_put_with_expect_100_is_refused_before_the_body(world):
    repo = world.repo(objects={}, rita="reader")
    path = f"/master.{repo}/big.bin"
    headers = sign_v4(world.users["rita"], "PUT", f"{world.endpoint}{path}",
                      {"Content-Length": str(4 * MiB), "Expect": "100-continue"},
                      payload_hash="UNSIGNED-PAYLOAD")
    with socket.create_connection(("127.0.0.1", world.server.port), timeout=30) as s:
        s.sendall((f"PUT {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                   + "\r\n").encode())
        status, _, body = read_response(s)
        assert status == 403 and error_code(body) == "AccessDenied", (status, body)  # not 100
        assert s.recv(10) == b""
    assert "Contents" not in world.s3.list_objects_v2(Bucket=f"master.{repo}")


BAD_AUTH = [
    {"Authorization": "AWS4-HMAC-SHA256"},
    {"Authorization": "AWS4-HMAC-SHA256 Credential="},
    {"Authorization": "AWS4-HMAC-SHA256 Credential=a/b/c, SignedHeaders=host, Signature=zz"},
    {"Authorization": "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/s3/aws4_request, "
                      "SignedHeaders=host;x-amz-date, Signature=00"},
    {"Authorization": "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/s3/aws4_request, "
                      "SignedHeaders=host;x-nope, Signature=" + "0" * 64, "x-amz-date": "20260101T000000Z",
     "x-amz-content-sha256": "UNSIGNED-PAYLOAD"},
    {"Authorization": "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/s3/aws4_request, "
                      "SignedHeaders=host, Signature=" + "0" * 64, "x-amz-date": "garbage",
     "x-amz-content-sha256": "UNSIGNED-PAYLOAD"},
    {"Authorization": "AWS4-ECDSA-P256-SHA256 Credential=AK/20260101/s3/aws4_request, "
                      "SignedHeaders=host, Signature=00"},
    {"Authorization": "AWS "},
    {"Authorization": "AWS onlykey"},
    {"Authorization": "AWS key:sig", "Date": "not a date"},
    {"Authorization": "Bearer abc"},
    {"Authorization": "AWS4-HMAC-SHA256 Credential=\u00e9/20260101/us-east-1/s3/aws4_request"},
]
BAD_QUERY = [
    "X-Amz-Algorithm=AWS4-HMAC-SHA256",
    "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20260101%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Date=20260101T000000Z&X-Amz-Expires=abc&X-Amz-SignedHeaders=host&X-Amz-Signature=00",
    "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20260101%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Date=2026&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=00",
    "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20260101%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Date=20260101T000000Z&X-Amz-Expires=-5&X-Amz-SignedHeaders=host&X-Amz-Signature=00",
    "AWSAccessKeyId=x&Signature=y",
    "AWSAccessKeyId=x&Expires=notanumber&Signature=y",
    "AWSAccessKeyId=x&Expires=99999999999999999999999999&Signature=y",
    "AWSAccessKeyId=&Expires=1&Signature=",
]


@pytest.mark.parametrize("headers", BAD_AUTH, ids=[f"header{i}" for i in range(len(BAD_AUTH))])
def test_malformed_authorization_is_a_clean_4xx(world, headers):
    h = {"Host": f"127.0.0.1:{world.server.port}", **headers}
    status, _, body = raw_request(world.server.port, "GET", "/", h)
    assert 400 <= status < 500 and body.startswith(b"<?xml") and error_code(body), (status, body)


@pytest.mark.parametrize("query", BAD_QUERY, ids=[f"query{i}" for i in range(len(BAD_QUERY))])
def test_malformed_presigned_query_is_a_clean_4xx(world, query):
    h = {"Host": f"127.0.0.1:{world.server.port}"}
    status, _, body = raw_request(world.server.port, "GET", "/?" + query, h)
    assert 400 <= status < 500 and body.startswith(b"<?xml") and error_code(body), (status, body)


def test_refused_before_the_body_closes_the_connection(world):
    repo = world.repo(objects={})
    with socket.create_connection(("127.0.0.1", world.server.port), timeout=30) as s:
        s.sendall(f"PUT /master.{repo}/anon.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  f"Content-Length: {4 * MiB}\r\nExpect: 100-continue\r\n\r\n".encode())
        status, _, body = read_response(s)
        assert status == 403 and error_code(body) == "AccessDenied"
        assert s.recv(10) == b""  # closed: the body was never sent
    assert "Contents" not in world.s3.list_objects_v2(Bucket=f"master.{repo}")
