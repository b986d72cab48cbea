// The AWS SDK for JavaScript v3 against a live s3gw: run by tests/compat/test_data_tools.py.
//
// Configured as its users configure it for a non-AWS endpoint: `endpoint`, `forcePathStyle:
// true`, a region and static credentials (all from the environment: S3_ENDPOINT,
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION; BUCKET names an existing bucket).
// Each step prints one JSON line {op, status: "pass"|"fail", reason?, note?, seconds} and
// the scenario carries on after a failure, like tests/compat/recorder.py. The last line is
// {"done": true, "state": {...}} with what the Python side checks with its own client.

import { createHash, randomBytes } from "node:crypto";
import {
  S3Client, PutObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command,
  CopyObjectCommand, DeleteObjectCommand, DeleteObjectsCommand, paginateListObjectsV2,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";

const env = process.env;
const bucket = env.BUCKET;
const MiB = 1024 * 1024;
const s3 = new S3Client({
  endpoint: env.S3_ENDPOINT,
  forcePathStyle: true,
  region: env.AWS_REGION || "us-east-1",
  credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
  maxAttempts: 1,
});
const state = {};

function emit(obj) { process.stdout.write(JSON.stringify(obj) + "\n"); }

async function step(op, fn) {
  const t0 = Date.now();
  const ctx = { note: "" };
  try {
    await fn(ctx);
    emit({ op, status: "pass", note: ctx.note, seconds: (Date.now() - t0) / 1000 });
  } catch (e) {
    const meta = e.$metadata ? ` (HTTP ${e.$metadata.httpStatusCode})` : "";
    emit({ op, status: "fail", reason: `${e.name}: ${e.message}${meta}`, note: ctx.note,
           seconds: (Date.now() - t0) / 1000 });
  }
}

function check(cond, msg) { if (!cond) throw new Error(msg); }
const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");
const body = async (resp) => Buffer.from(await resp.Body.transformToByteArray());

const KEY = "js/ünï dir/hello+world 100%.txt";
const V1 = Buffer.from("version one: hello from the JS SDK\n");
const V2 = Buffer.from("version two\n");

await step("put object", async (ctx) => {
  const r1 = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: KEY, Body: V1,
                                                  ContentType: "text/plain" }));
  check(r1.ETag === `"${createHash("md5").update(V1).digest("hex")}"`, `ETag ${r1.ETag}`);
  check(/^[0-9a-f]{32}$/.test(r1.VersionId || ""), `VersionId ${r1.VersionId}`);
  state.v1 = r1.VersionId;
  const r2 = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: KEY, Body: V2 }));
  state.v2 = r2.VersionId;
  check(r2.VersionId !== r1.VersionId, "the second put has the same version id");
  ctx.note = "x-amz-version-id = commit id";
});

await step("get object (byte-identical)", async () => {
  const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: KEY }));
  const got = await body(r);
  check(got.equals(V2), `got ${JSON.stringify(got.toString())}`);
  check(r.ContentLength === V2.length, `ContentLength ${r.ContentLength}`);
});

await step("get with Range", async (ctx) => {
  const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: KEY, Range: "bytes=8-10" }));
  const got = await body(r);
  check(got.equals(V2.subarray(8, 11)), `bytes=8-10 gave ${JSON.stringify(got.toString())}`);
  check(r.ContentRange === `bytes 8-10/${V2.length}`, `Content-Range ${r.ContentRange}`);
  const s = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: KEY, Range: "bytes=-4" }));
  check((await body(s)).equals(V2.subarray(-4)), "suffix range bytes=-4 differs");
  ctx.note = "bytes=8-10, bytes=-4";
});

await step("read an old version by version id (commit)", async () => {
  const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: KEY, VersionId: state.v1 }));
  const got = await body(r);
  check(got.equals(V1), `version ${state.v1} gave ${JSON.stringify(got.toString())}`);
  check(r.VersionId === state.v1, `answered VersionId ${r.VersionId}`);
  const h = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: KEY, VersionId: state.v1 }));
  check(h.ContentLength === V1.length, `HEAD of the old version: ${h.ContentLength} bytes`);
});

await step("read an old version through a commit bucket (<commit>.master.<repo>)", async () => {
  const r = await s3.send(new GetObjectCommand({ Bucket: `${state.v1}.${bucket}`, Key: KEY }));
  const got = await body(r);
  check(got.equals(V1), `the commit bucket gave ${JSON.stringify(got.toString())}`);
});

const MANY = 23;
await step("list", async (ctx) => {
  const keys = [];
  for (let i = 0; i < MANY; i++) keys.push(`list/k ${String(i).padStart(3, "0")}+ü.txt`);
  await Promise.all(keys.map((k) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: k,
                                                                    Body: k }))));
  const seen = [];
  let pages = 0;
  for await (const page of paginateListObjectsV2({ client: s3, pageSize: 5 },
                                                 { Bucket: bucket, Prefix: "list/", MaxKeys: 5 })) {
    pages++;
    check((page.Contents || []).length <= 5, `a page of ${page.Contents.length} keys`);
    for (const o of page.Contents || []) seen.push(o.Key);
  }
  check(JSON.stringify(seen) === JSON.stringify(keys), `listed ${JSON.stringify(seen)}`);
  check(pages === Math.ceil(MANY / 5), `${pages} pages`);
  const d = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Delimiter: "/" }));
  const prefixes = (d.CommonPrefixes || []).map((p) => p.Prefix).sort();
  check(JSON.stringify(prefixes) === JSON.stringify(["js/", "list/"]),
        `delimiter / gave ${JSON.stringify(prefixes)}`);
  ctx.note = `ListObjectsV2 paginated: ${MANY} keys in ${pages} pages of MaxKeys 5`;
});

await step("multipart upload 20 MiB", async (ctx) => {
  const big = randomBytes(20 * MiB + 12345);
  const up = new Upload({ client: s3, params: { Bucket: bucket, Key: "js/big.bin", Body: big },
                          partSize: 5 * MiB, queueSize: 4 });
  const r = await up.done();
  const h = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: "js/big.bin" }));
  check(h.ContentLength === big.length, `stored ${h.ContentLength} bytes`);
  check(/-5"$/.test(h.ETag), `ETag ${h.ETag} (expected 5 parts)`);
  const g = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "js/big.bin" }));
  check(sha256(await body(g)) === sha256(big), "downloaded bytes differ");
  state.big_sha256 = sha256(big);
  state.big_size = big.length;
  ctx.note = `lib-storage Upload: ${h.ETag.replace(/"/g, "").split("-")[1]} parts`;
  void r;
});

await step("copy (server-side)", async (ctx) => {
  await s3.send(new CopyObjectCommand({ Bucket: bucket, Key: "js/copy of big.bin",
                                        CopySource: `${bucket}/js/big.bin` }));
  // a key with unicode, space, '+' and '%' as the source: the SDK does not escape it
  await s3.send(new CopyObjectCommand({ Bucket: bucket, Key: "js/copy ü.txt",
                                        CopySource: encodeURIComponent(`${bucket}/${KEY}`) }));
  const g = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "js/copy ü.txt" }));
  check((await body(g)).equals(V2), "the copy's bytes differ");
  // an old version as the copy source (restore)
  await s3.send(new CopyObjectCommand({
    Bucket: bucket, Key: "js/restored.txt",
    CopySource: `${encodeURIComponent(`${bucket}/${KEY}`)}?versionId=${state.v1}` }));
  const o = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "js/restored.txt" }));
  check((await body(o)).equals(V1), "copying the old version gave other bytes");
  ctx.note = "CopySource escaped whole (encodeURIComponent), and ?versionId=";
});

await step("delete", async (ctx) => {
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: KEY }));
  const keys = [];
  for (let i = 0; i < MANY; i++) keys.push({ Key: `list/k ${String(i).padStart(3, "0")}+ü.txt` });
  const r = await s3.send(new DeleteObjectsCommand({ Bucket: bucket,
                                                     Delete: { Objects: keys, Quiet: false } }));
  check((r.Deleted || []).length === MANY && !(r.Errors || []).length,
        `deleted ${(r.Deleted || []).length}, errors ${JSON.stringify(r.Errors)}`);
  let gone = false;
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: KEY }));
  } catch (e) {
    gone = e.$metadata && e.$metadata.httpStatusCode === 404;
  }
  check(gone, "the deleted key is still there");
  // history keeps it: the old version is still readable
  const g = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: KEY, VersionId: state.v2 }));
  check((await body(g)).equals(V2), "the deleted key's last version is not readable");
  ctx.note = `DeleteObject, DeleteObjects of ${MANY} keys`;
});

emit({ done: true, state });
