"""On-disk caches: memoised file hashes and resumable embedding arrays.

Layout under the cache root (``$HARDNEG_CACHE``, else ``~/.cache/hardneg``)::

    file_hashes.json                     path|size|mtime_ns -> sha256 (weights are hashed once)
    embeddings/<key>/chunk2048_00000.npy  float32 (<=2048, d), written atomically as encoding goes
    embeddings/<key>/embeddings.npy       the consolidated (n, d) array; chunks are then removed
    embeddings/<key>/info.json            encoder name, fingerprint, kind, n, dim

``key`` hashes the encoder fingerprint, the kind (query / passage) and the texts, so a change in
any of them is a different entry. An interrupted encode resumes at the first missing chunk.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from hardneg.io import atomic_open, read_json, sha256_file, sha256_texts, write_json

log = logging.getLogger(__name__)

CHUNK_SIZE = 2048
FORMAT = "emb-v1"


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """``cache_dir`` if given, else ``$HARDNEG_CACHE``, else ``~/.cache/hardneg``."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("HARDNEG_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "hardneg"


def hash_files(paths: Iterable[Path], root: Path, cache_dir: str | Path | None = None) -> str:
    """sha256 over (relative name, content hash) of ``paths``; content hashes are memoised.

    The memo is keyed by ``path|size|mtime_ns``: touching or rewriting a file re-hashes it, an
    unchanged 400 MB checkpoint is hashed once per machine.
    """
    memo_path = cache_root(cache_dir) / "file_hashes.json"
    try:
        memo = read_json(memo_path)
    except (OSError, ValueError):
        memo = {}
    h, changed = hashlib.sha256(), False
    for p in sorted(paths):
        st = p.stat()
        k = f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        if k not in memo:
            memo[k], changed = sha256_file(p), True
        h.update(f"{p.relative_to(root).as_posix()}\0{memo[k]}\n".encode())
    if changed:
        with contextlib.suppress(OSError):  # a read-only cache only costs speed
            write_json(memo_path, memo)
    return h.hexdigest()


def entry_dir(fingerprint: str, kind: str, texts: Sequence[str], cache_dir: str | Path | None = None) -> Path:
    """Directory of the cache entry for these inputs."""
    key = hashlib.sha256(f"{FORMAT}\0{fingerprint}\0{kind}\0{sha256_texts(texts)}".encode()).hexdigest()
    return cache_root(cache_dir) / "embeddings" / key[:32]


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with atomic_open(path, "wb") as f:
        np.save(f, np.ascontiguousarray(arr, dtype=np.float32))


def _load_chunk(path: Path, rows: int) -> np.ndarray | None:
    """A finished chunk, or None when it is missing or unreadable (then it is encoded again)."""
    if not path.is_file():
        return None
    try:
        arr = np.load(path)
    except (OSError, ValueError) as e:
        log.warning("re-encoding unreadable cache chunk %s (%s)", path, e)
        return None
    return arr if arr.ndim == 2 and arr.shape[0] == rows else None


def cached_encode(
    encode: Callable[[Sequence[str]], np.ndarray],
    texts: Sequence[str],
    entry: Path,
    *,
    info: dict,
    chunk_size: int = CHUNK_SIZE,
    progress: bool = True,
    on_batch: Callable[[Callable[[int], None] | None], None] | None = None,
) -> np.ndarray:
    """Return ``encode(texts)`` from ``entry`` or compute it chunk by chunk, saving each chunk.

    ``encode`` maps a list of texts to a float32 (n, d) array. ``on_batch`` (optional) receives a
    callback ``advance(n_texts)`` that a batching encoder can call per batch for a smooth
    progress bar; it is called again with None at the end. A second call with the same ``entry``
    only reads ``embeddings.npy``; after a crash it encodes only the chunks not yet on disk.
    """
    final = entry / "embeddings.npy"
    n = len(texts)
    if final.is_file():
        arr = np.load(final)
        if arr.shape[0] == n:
            log.debug("embedding cache hit: %s", final)
            return arr
        log.warning("ignoring cache entry %s with %d rows (expected %d)", final, arr.shape[0], n)
    entry.mkdir(parents=True, exist_ok=True)
    starts = list(range(0, n, chunk_size))
    chunk_path = lambda i: entry / f"chunk{chunk_size}_{i:05d}.npy"  # noqa: E731
    parts: list[np.ndarray | None] = [_load_chunk(chunk_path(i), min(chunk_size, n - s))
                                      for i, s in enumerate(starts)]
    todo = sum(min(chunk_size, n - s) for s, p in zip(starts, parts) if p is None)
    if todo < n:
        log.info("resuming encode: %d of %d texts already cached in %s", n - todo, n, entry)
    parts = _fill_missing(encode, texts, parts, starts, chunk_size, chunk_path, todo, progress, on_batch,
                          unit=str(info.get("kind") or "text"))
    arr = np.concatenate(parts, axis=0) if parts else np.zeros((0, 0), dtype=np.float32)
    _save_npy(final, arr)
    write_json(entry / "info.json", {**info, "n": n, "dim": int(arr.shape[1]) if arr.ndim == 2 else 0,
                                     "created_unix": round(time.time(), 3)})
    for i in range(len(starts)):
        with contextlib.suppress(FileNotFoundError):
            chunk_path(i).unlink()
    return arr


def _fill_missing(encode, texts, parts, starts, chunk_size, chunk_path, todo, progress, on_batch, unit):
    """Encode the chunks that are None in ``parts``, saving each one as soon as it is done."""
    from tqdm.auto import tqdm

    desc = f"encode {'queries' if unit == 'query' else unit + 's'}"
    bar = tqdm(total=todo, desc=desc, unit=unit, disable=not progress or todo == 0, smoothing=0.1)
    try:
        for i, s in enumerate(starts):
            if parts[i] is not None:
                continue
            chunk = list(texts[s:s + chunk_size])
            before = bar.n
            if on_batch is not None:
                on_batch(bar.update)
            arr = np.asarray(encode(chunk), dtype=np.float32)
            if arr.shape[0] != len(chunk):
                raise RuntimeError(f"encoder returned {arr.shape[0]} rows for {len(chunk)} texts")
            bar.update(len(chunk) - (bar.n - before))  # whatever the per-batch callback did not count
            _save_npy(chunk_path(i), arr)
            parts[i] = arr
    finally:
        if on_batch is not None:
            on_batch(None)
        bar.close()
    return parts
