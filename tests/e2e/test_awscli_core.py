"""The real aws cli against a real server: the commands a user types (below the multipart threshold)."""

import json
import os
import uuid


def test_awscli_bucket_and_object_commands(aws, tmp_path):
    bucket = f"master.cli{uuid.uuid4().hex[:8]}"
    aws("s3", "mb", f"s3://{bucket}")
    assert bucket in aws("s3", "ls").stdout

    src = tmp_path / "photo one.bin"
    data = os.urandom(3 * 1024 * 1024 + 17)
    src.write_bytes(data)
    aws("s3", "cp", str(src), f"s3://{bucket}/2026/photo one.bin")
    aws("s3", "cp", str(src), f"s3://{bucket}/2026/plus+sign.bin")
    listing = aws("s3", "ls", f"s3://{bucket}", "--recursive").stdout
    assert "2026/photo one.bin" in listing and "2026/plus+sign.bin" in listing
    assert "PRE 2026/" in aws("s3", "ls", f"s3://{bucket}").stdout

    dst = tmp_path / "back.bin"
    aws("s3", "cp", f"s3://{bucket}/2026/photo one.bin", str(dst))
    assert dst.read_bytes() == data

    small = tmp_path / "small.txt"
    small.write_text("hello")
    put = json.loads(aws("s3api", "put-object", "--bucket", bucket, "--key", "s.txt", "--body",
                         str(small), "--content-type", "text/plain").stdout)
    assert put["ETag"] == '"5d41402abc4b2a76b9719d911017c592"'
    head = json.loads(aws("s3api", "head-object", "--bucket", bucket, "--key", "s.txt").stdout)
    assert head["ContentLength"] == 5 and head["ContentType"] == "text/plain"
    out = tmp_path / "out.txt"
    aws("s3api", "get-object", "--bucket", bucket, "--key", "s.txt", "--range", "bytes=1-3", str(out))
    assert out.read_text() == "ell"
    v1 = json.loads(aws("s3api", "list-objects", "--bucket", bucket).stdout)
    v2 = json.loads(aws("s3api", "list-objects-v2", "--bucket", bucket, "--prefix", "2026/").stdout)
    assert len(v1["Contents"]) == 3 and len(v2["Contents"]) == 2

    aws("s3api", "delete-object", "--bucket", bucket, "--key", "s.txt")
    deleted = json.loads(aws("s3api", "delete-objects", "--bucket", bucket, "--delete",
                             json.dumps({"Objects": [{"Key": "2026/plus+sign.bin"}]})).stdout)
    assert deleted["Deleted"][0]["Key"] == "2026/plus+sign.bin"
    remaining = aws("s3", "ls", f"s3://{bucket}", "--recursive").stdout
    assert "photo one.bin" in remaining and "plus+sign" not in remaining and "s.txt" not in remaining

    missing = aws("s3api", "head-object", "--bucket", bucket, "--key", "nope", check=False)
    assert missing.returncode != 0 and "404" in missing.stderr

    aws("s3", "rb", f"s3://{bucket}", "--force")
    assert bucket not in aws("s3", "ls").stdout


def test_awscli_sync_twice_transfers_nothing(aws, tmp_path):
    bucket = f"master.sync{uuid.uuid4().hex[:8]}"
    aws("s3", "mb", f"s3://{bucket}")
    folder = tmp_path / "tree"
    (folder / "a" / "b").mkdir(parents=True)
    for i, rel in enumerate(["x.txt", "a/y.txt", "a/b/z.bin", "a/b/space name.txt"]):
        (folder / rel).write_bytes(os.urandom(1000 + i))
    first = aws("s3", "sync", str(folder), f"s3://{bucket}/tree").stdout
    assert first.count("upload:") == 4
    second = aws("s3", "sync", str(folder), f"s3://{bucket}/tree").stdout
    assert "upload:" not in second
    back = tmp_path / "back"
    aws("s3", "sync", f"s3://{bucket}/tree", str(back))
    assert (back / "a/b/space name.txt").read_bytes() == (folder / "a/b/space name.txt").read_bytes()
