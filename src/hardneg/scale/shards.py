"""Sharded, resumable corpus encoding and exact search that streams the shards.

Layout of a shard folder::

    manifest.json       format, encoder name + fingerprint, kind, texts sha256, n, shard_size, dtype,
                        shard row counts (written first, so a resumed run can check it)
    shard-00000.npy     (<= shard_size, d) float32 or float16, each written atomically
    shard-00001.npy     ...

A killed run leaves only whole shards (plus perhaps a ``.shard-*.tmp`` that is ignored); running
``encode_sharded`` again with the same encoder and texts encodes only the shards not on disk. A
folder written for another encoder, kind, text list, dtype or shard size is refused with a
``HardnegError`` rather than silently mixed. Memory: one shard of vectors at a time (choose the
shard size from a byte budget with ``shard_rows_for_budget``); search holds one shard plus the
running top-k per query, never the queries x corpus matrix.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from hardneg.core.errors import HardnegError
from hardneg.core.files import atomic_open, read_json, sha256_texts, write_json
from hardneg.core.testhooks import kill_point
from hardneg.encode.cache import CHUNK_SIZE

log = logging.getLogger(__name__)

FORMAT = "hardneg-shards-v1"
MANIFEST = "manifest.json"
DTYPES = ("float32", "float16")
_CHECKED = ("format", "fingerprint", "kind", "texts_sha256", "n", "shard_size", "dtype")


def shard_rows_for_budget(dim: int, dtype: str, budget_bytes: int) -> int:
    """Rows per shard so one shard fits ``budget_bytes``: the stored rows plus the float32 copy
    the encoder returns (and search converts to) before casting.

    >>> shard_rows_for_budget(384, "float16", 1 << 20)  # 1 MiB: 384 * (2 + 4) bytes per row
    455
    """
    if dtype not in DTYPES:
        raise HardnegError(f"unknown shard dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    per_row = dim * (np.dtype(dtype).itemsize + 4)
    rows = int(budget_bytes) // per_row
    if rows >= CHUNK_SIZE:  # whole cache chunks: shards then reproduce encode_cached's batches
        rows -= rows % CHUNK_SIZE
    if rows < 1:
        raise HardnegError(f"memory budget {budget_bytes} bytes is below one {dim}-d row ({per_row} bytes): "
                           "raise --max-memory")
    return rows


def parse_bytes(text: str) -> int:
    """``"512MB"``, ``"2GiB"``, ``"1.5G"`` or a plain number of bytes -> int (powers of 1024).

    >>> parse_bytes("2GB"), parse_bytes("512m"), parse_bytes("1000")
    (2147483648, 536870912, 1000)
    """
    s = str(text).strip().lower().removesuffix("b").removesuffix("i")
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    mult = units.get(s[-1:], 1)
    try:
        value = float(s[:-1] if s[-1:] in units else s)
    except ValueError:
        raise HardnegError(f"cannot read memory size {text!r}: write e.g. 512MB, 2GB or a number of bytes") from None
    if value <= 0:
        raise HardnegError(f"memory size must be positive, got {text!r}")
    return int(value * mult)


@dataclass(frozen=True)
class ShardSet:
    """The finished shards of one folder; iterating yields ``(row_offset, array)`` per shard,
    each array memory-mapped read-only (float32 or float16, shape (rows, d))."""

    root: Path
    sizes: tuple[int, ...]
    dtype: str
    fingerprint: str = ""

    @classmethod
    def open(cls, root: str | Path) -> "ShardSet":
        root = Path(root)
        try:
            m = read_json(root / MANIFEST)
        except (OSError, ValueError) as e:
            raise HardnegError(f"{root}: no readable {MANIFEST} ({e}); encode the corpus with encode_sharded") from None
        sizes = tuple(int(s) for s in m["shard_rows"])
        missing = [i for i in range(len(sizes)) if not shard_path(root, i).is_file()]
        if missing:
            raise HardnegError(f"{root}: shards {missing[:5]} are missing; run the encoding again to finish it")
        return cls(root, sizes, m["dtype"], m.get("fingerprint", ""))

    def __len__(self) -> int:
        return sum(self.sizes)

    @property
    def offsets(self) -> list[int]:
        return np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(int).tolist() if self.sizes else []

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        for i, off in enumerate(self.offsets):
            yield off, np.load(shard_path(self.root, i), mmap_mode="r")

    # the ``hardneg.search.blocks.VectorBlocks`` protocol: search streams the shards through it
    @property
    def n_blocks(self) -> int:
        return len(self.sizes)

    @property
    def index_dir(self) -> Path:
        return self.root

    def blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        """``(row_offset, array)`` per shard, each read into memory in turn (one shard at a time)."""
        return self.arrays(mmap=False)

    def arrays(self, mmap: bool = True) -> Iterator[tuple[int, np.ndarray]]:
        """``(row_offset, array)`` per shard; ``mmap=False`` reads each shard into memory instead, so
        a streamed pass holds one shard at a time (mapped pages would stay in the process's RSS)."""
        for i, off in enumerate(self.offsets):
            yield off, np.load(shard_path(self.root, i), mmap_mode="r" if mmap else None)

    def rows(self, idx) -> np.ndarray:
        """float32 vectors of global rows ``idx`` (any order), read from the mapped shards."""
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        out = np.empty((len(idx), self.dim), np.float32)
        bounds = np.cumsum(self.sizes)
        which = np.searchsorted(bounds, idx, side="right")
        if len(idx) and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"row out of range 0..{len(self) - 1}")
        for sh in np.unique(which):
            arr = np.load(shard_path(self.root, int(sh)), mmap_mode="r")
            sel = np.flatnonzero(which == sh)
            out[sel] = arr[idx[sel] - (bounds[sh] - self.sizes[sh])]
        return out

    @property
    def dim(self) -> int:
        if not self.sizes:
            return 0
        return int(np.load(shard_path(self.root, 0), mmap_mode="r").shape[1])

    def load(self) -> np.ndarray:
        """All rows as one float32 (n, d) array (only for corpora that fit in memory)."""
        return np.concatenate([np.asarray(a, dtype=np.float32) for _, a in self], axis=0)


def shard_path(root: Path, i: int) -> Path:
    return Path(root) / f"shard-{i:05d}.npy"


def _check_manifest(root: Path, want: dict) -> None:
    try:
        have = read_json(root / MANIFEST)
    except (OSError, ValueError) as e:
        raise HardnegError(f"{root / MANIFEST}: unreadable ({e}); delete the folder to re-encode") from None
    bad = [k for k in _CHECKED if have.get(k) != want[k]]
    if bad:
        diff = "; ".join(f"{k}: folder has {have.get(k)!r}, this run {want[k]!r}" for k in bad)
        raise HardnegError(f"{root} holds shards of other inputs ({diff}): pass another output folder "
                           "or delete this one to re-encode")


def _shard_ok(path: Path, rows: int, dtype: str) -> bool:
    if not path.is_file():
        return False
    try:
        arr = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as e:
        log.warning("re-encoding unreadable shard %s (%s)", path, e)
        return False
    return arr.ndim == 2 and arr.shape[0] == rows and arr.dtype == np.dtype(dtype)


@dataclass(frozen=True)
class ShardPlan:
    """What ``encode_sharded`` will do: the folder, the rows per shard and the shards still to encode."""

    root: Path
    sizes: tuple[int, ...]
    todo: tuple[int, ...]
    shard_size: int
    dtype: str
    fingerprint: str
    kind: str

    def texts(self, texts: Sequence[str], i: int) -> list[str]:
        """The texts of shard ``i``."""
        return list(texts[i * self.shard_size: i * self.shard_size + self.sizes[i]])

    def write(self, i: int, arr: np.ndarray) -> None:
        """Check and atomically save shard ``i`` (float32 vectors, cast to the folder's dtype)."""
        arr = np.asarray(arr, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[0] != self.sizes[i]:
            raise RuntimeError(f"encoder returned shape {arr.shape} for shard {i} of {self.sizes[i]} texts")
        with atomic_open(shard_path(self.root, i), "wb") as f:
            np.save(f, arr.astype(self.dtype))

    def shardset(self) -> "ShardSet":
        return ShardSet(self.root, self.sizes, self.dtype, self.fingerprint)


def plan_shards(encoder, texts: Sequence[str], out_dir: str | Path, *, shard_size: int = 100_000,
                dtype: str = "float32", kind: str = "passage") -> ShardPlan:
    """Write (or check) the manifest of ``out_dir`` and list the shards not yet on disk.

    ``encoder`` only needs ``name`` and ``fingerprint`` here (it is not called): any encoder, or the
    ``scale.engine.Workers`` that will encode the shards.
    """
    if dtype not in DTYPES:
        raise HardnegError(f"unknown shard dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    if shard_size < 1:
        raise HardnegError(f"shard_size must be a positive number of rows, got {shard_size}")
    if kind not in ("passage", "query"):
        raise ValueError(f"kind must be 'passage' or 'query', got {kind!r}")
    root, n = Path(out_dir), len(texts)
    sizes = [min(shard_size, n - s) for s in range(0, n, shard_size)]
    manifest = {"format": FORMAT, "encoder": getattr(encoder, "name", type(encoder).__name__),
                "fingerprint": encoder.fingerprint, "kind": kind, "texts_sha256": sha256_texts(texts), "n": n,
                "shard_size": shard_size, "dtype": dtype, "shard_rows": sizes}
    if (root / MANIFEST).exists():
        _check_manifest(root, manifest)
    else:
        write_json(root / MANIFEST, manifest)
    todo = [i for i, rows in enumerate(sizes) if not _shard_ok(shard_path(root, i), rows, dtype)]
    if len(todo) < len(sizes):
        log.info("resuming sharded encode in %s: %d of %d shards done", root, len(sizes) - len(todo), len(sizes))
    return ShardPlan(root, tuple(sizes), tuple(todo), shard_size, dtype, encoder.fingerprint, kind)


def encode_shard(encoder, texts: Sequence[str], kind: str, chunk: int = CHUNK_SIZE,
                 progress=None) -> np.ndarray:
    """One shard's float32 vectors, encoded ``chunk`` texts per encoder call.

    The chunk equals the embedding cache's, so a shard whose start is a multiple of ``chunk``
    gets exactly the vectors ``encode_cached`` computes for those rows (same length-sorted
    batches), whichever engine runs it.
    """
    fn = encoder.encode_passages if kind == "passage" else encoder.encode_queries
    parts = []
    for s in range(0, len(texts), chunk):
        part = list(texts[s: s + chunk])
        parts.append(np.asarray(fn(part), dtype=np.float32))
        if progress is not None:
            progress(len(part))
    return np.concatenate(parts, axis=0) if parts else np.asarray(fn([]), dtype=np.float32)


def encode_sharded(encoder, texts: Sequence[str], out_dir: str | Path, *, shard_size: int = 100_000,
                   dtype: str = "float32", kind: str = "passage", progress: bool = True) -> ShardSet:
    """Encode ``texts`` with ``encoder`` into ``out_dir`` shard by shard; resume a killed run.

    ``encoder`` is any ``Encoder`` (``encode_passages`` for kind='passage', else ``encode_queries``).
    Returns the ``ShardSet``; rows are in ``texts`` order, shard i holding rows
    ``i*shard_size .. (i+1)*shard_size - 1``. ``hardneg.scale.ray_engine.ActorEncoders`` writes the
    same folder with Ray actors.
    """
    texts = list(texts)
    plan = plan_shards(encoder, texts, out_dir, shard_size=shard_size, dtype=dtype, kind=kind)
    from tqdm.auto import tqdm

    with tqdm(total=sum(plan.sizes[i] for i in plan.todo), desc=f"encode {kind} shards", unit=kind,
              disable=not progress or not plan.todo) as bar:
        for i in plan.todo:
            kill_point("shards.shard", str(i))
            plan.write(i, encode_shard(encoder, plan.texts(texts, i), kind, progress=bar.update))
    return plan.shardset()


