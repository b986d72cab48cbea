"""Which chunk store a data folder uses: its own ``chunks/`` (default) or an object store.

``s3gw serve --chunks s3://bucket/prefix?endpoint=...`` records the URL in
``<data>/chunks.url`` the first time; from then on every command on that folder
(``serve`` without ``--chunks``, ``gc``, ``fsck``, ``stats``) opens the same
store, and a ``--chunks`` naming another store is refused: the folder's
metadata refers to chunks in that store and nowhere else.  Only ``payload``
(how the gateway signs its PUTs) may change: the serving process records the
new URL.  A folder that
already holds chunks of its own is refused too (move them first: ``s3gw
migrate``).  No credentials are ever written: they come from the environment
or a profile.
"""

from __future__ import annotations

import dataclasses
import os

from ._durable import fsync_dir
from .chunkstore import ChunkError, LocalChunkStore
from .s3url import S3UrlError, is_s3_url, parse_s3_url

__all__ = ["open_chunk_store", "recorded_chunks_url", "ChunkStoreChoiceError", "CHUNKS_URL_FILE"]

CHUNKS_URL_FILE = "chunks.url"


class ChunkStoreChoiceError(ChunkError):
    """The chunk store asked for cannot serve this data folder (the message says why)."""


def recorded_chunks_url(data_dir: str) -> str | None:
    try:
        with open(os.path.join(data_dir, CHUNKS_URL_FILE)) as f:
            return f.read().strip() or None
    except FileNotFoundError:
        return None


def _has_local_chunks(data_dir: str) -> bool:
    root = os.path.join(data_dir, "chunks")
    if os.path.isdir(root):
        for top in os.listdir(root):
            sub = os.path.join(root, top)
            if os.path.isdir(sub) and os.listdir(sub):
                return True
    packs = os.path.join(data_dir, "packs")
    return os.path.isdir(packs) and any(n.endswith(".pack") for n in os.listdir(packs))


def _record(data_dir: str, url: str) -> None:
    path = os.path.join(data_dir, CHUNKS_URL_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(url + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(data_dir)


def open_chunk_store(data_dir: str, chunks: str | None = None, *, owner: bool = True,
                     fsync: bool = True, direct_writes: bool = False, tmp_grace_s: float = 0.0):
    """The chunk store of ``data_dir``: ``chunks`` (an ``s3://`` URL) or the one
    recorded, else the local store in the folder.

    ``owner``: the serving process (records a new URL; the local store cleans
    its temp files, those older than ``tmp_grace_s`` only where several gateways
    share the folder).  Admin commands pass False.

    Raises:
        ChunkStoreChoiceError: a bad URL, another store than the recorded one, or
            a folder with local chunks asked to use an object store.
    """
    recorded = recorded_chunks_url(data_dir)
    if chunks:
        if not is_s3_url(chunks):
            raise ChunkStoreChoiceError(f"--chunks takes an s3:// URL, not {chunks!r}")
        try:
            wanted = parse_s3_url(chunks)
        except S3UrlError as exc:
            raise ChunkStoreChoiceError(f"--chunks: {exc}") from None
        if recorded is not None:
            before = parse_s3_url(recorded)
            # payload signing is how this gateway talks to the store, not which store
            if dataclasses.replace(before, payload=None) != dataclasses.replace(wanted, payload=None):
                raise ChunkStoreChoiceError(
                    f"{data_dir} keeps its chunks in {recorded}, not {wanted.url()}")
            if owner and before != wanted:
                _record(data_dir, wanted.url())
        elif _has_local_chunks(data_dir):
            raise ChunkStoreChoiceError(
                f"{data_dir} holds chunks of its own: move them with `s3gw migrate` first")
        elif owner:
            _record(data_dir, wanted.url())
        url = wanted.url()
    else:
        url = recorded
    if url is None:
        return LocalChunkStore(data_dir, fsync=fsync, direct_writes=direct_writes, owner=owner,
                               tmp_grace_s=tmp_grace_s)
    from .s3chunks import S3ChunkStore
    return S3ChunkStore(url)
