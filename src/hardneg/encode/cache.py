"""The embedding cache: resumable, weight-keyed embedding arrays on disk.

Layout under the cache root (``hardneg.core.paths.cache_root``)::

    embeddings/<key>/chunk2048_00000.npy  float32 (<=2048, d), written atomically as encoding goes
    embeddings/<key>/embeddings.npy       the consolidated (n, d) array; chunks are then removed
    embeddings/<key>/info.json            encoder name, fingerprint, kind, n, dim

``key`` hashes the encoder fingerprint (weights + every setting that changes vectors), the kind
(query / passage) and the texts, so a change in any of them is a different entry and a fine-tuned
checkpoint never receives its base model's vectors. An interrupted encode resumes at the first
missing chunk.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from hardneg.core.files import WriteError, atomic_open, sha256_texts, write_error, write_json
from hardneg.core.paths import cache_root
from hardneg.core.testhooks import kill_point
from hardneg.encode.base import Encoder

log = logging.getLogger(__name__)


CHUNK_SIZE = 2048
_MOVE_CACHE = "To put the cache on another disk pass --cache-dir DIR or set $HARDNEG_CACHE"


FORMAT = "emb-v1"


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
    try:
        entry.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_error(e, entry / "embeddings.npy", _MOVE_CACHE) from None
    starts = list(range(0, n, chunk_size))
    chunk_path = lambda i: entry / f"chunk{chunk_size}_{i:05d}.npy"  # noqa: E731
    parts: list[np.ndarray | None] = [_load_chunk(chunk_path(i), min(chunk_size, n - s))
                                      for i, s in enumerate(starts)]
    todo = sum(min(chunk_size, n - s) for s, p in zip(starts, parts) if p is None)
    if todo < n:
        log.info("resuming encode: %d of %d texts already cached in %s", n - todo, n, entry)
    try:
        parts = _fill_missing(encode, texts, parts, starts, chunk_size, chunk_path, todo, progress, on_batch,
                              unit=str(info.get("kind") or "text"))
        arr = np.concatenate(parts, axis=0) if parts else np.zeros((0, 0), dtype=np.float32)
        write_json(entry / "info.json", {**info, "n": n, "dim": int(arr.shape[1]) if arr.ndim == 2 else 0,
                                         "created_unix": round(time.time(), 3)})
        _save_npy(final, arr)  # last: the entry counts as whole once this is there
    except WriteError as e:
        done = sum(p is not None and chunk_path(i).is_file() for i, p in enumerate(parts))
        raise WriteError(e, e.filename, f"{e.message.split('; ')[0]}; the embedding cache keeps the {done} of "
                         f"{len(starts)} chunks already encoded in {entry} and a rerun encodes only the rest. "
                         f"{_MOVE_CACHE}") from None
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
            kill_point("encode.chunk", str(i))
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


def encode_cached(encoder: Encoder, texts: Sequence[str], *, kind: str, cache_dir: str | Path | None = None,
                  progress: bool = True, chunk_size: int = CHUNK_SIZE) -> np.ndarray:
    """Encode ``texts`` as queries (kind='query') or passages (kind='passage'), through the disk cache.

    The entry is keyed by ``encoder.fingerprint``, ``kind`` and the texts; a second call with the
    same inputs only reads one .npy file, an interrupted one resumes at the first missing chunk
    (chunks of ``chunk_size`` texts are saved as they finish).
    """
    if kind not in ("query", "passage"):
        raise ValueError(f"kind must be 'query' or 'passage', got {kind!r}")
    fn = encoder.encode_queries if kind == "query" else encoder.encode_passages
    texts = list(texts)
    if not texts:
        return np.asarray(fn([]), dtype=np.float32)
    entry = entry_dir(encoder.fingerprint, kind, texts, cache_dir)
    on_batch = None
    if hasattr(encoder, "progress_callback"):
        on_batch = lambda cb: setattr(encoder, "progress_callback", cb)  # noqa: E731
    info = {"encoder": getattr(encoder, "name", type(encoder).__name__), "fingerprint": encoder.fingerprint,
            "kind": kind}
    return cached_encode(fn, texts, entry, info=info, progress=progress, on_batch=on_batch,
                         chunk_size=chunk_size)
