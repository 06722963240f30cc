"""Where encoding and candidate search run: this process (``local``) or a Ray cluster (``ray``).

The engine changes where work runs, never what comes out: for the same inputs and settings,
``--engine ray`` writes byte-identical shards, pools and mining output to the local engine (tested
in ``tests/test_ray_engine.py``) when its workers run the same kernels as the local process: the
same device type and the same torch / FAISS threads (``cpus_per_worker`` = the local core count on
CPU). Torch's and FAISS's CPU kernels split some sums by thread count (measured: a 1-text batch of a
BERT, and ``faiss.knn`` scores, differ in the last bit between 1 and 2 threads), and a GPU computes
differently from a CPU, so
with other thread counts or devices the vectors, and through them the scores, may differ in the
last bit. Two corpus paths exist:

* in-memory (local engine, no ``max_memory``): ``encode_cached`` holds the (N, d) matrix, search
  runs ``search.topk`` over it. Fastest for corpora that fit in RAM.
* sharded (``max_memory`` set, or the Ray engine): vectors go to ``hardneg.scale.shards`` folders under
  ``<cache>/shards/<key>`` (one shard in RAM at a time, each written atomically, a killed run
  resumes at the first missing shard); exact search streams the shards. Shard rows are whole
  multiples of the cache's 2,048-text chunk, so every encoder call sees the same texts on
  every engine.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from hardneg.core.errors import HardnegError
from hardneg.core.files import read_json, sha256_texts
from hardneg.core.options import opt
from hardneg.core.paths import cache_root
from hardneg.encode.base import encoder_dim
from hardneg.scale.shards import (
    DTYPES,
    MANIFEST,
    ShardSet,
    encode_sharded,
    parse_bytes,
    plan_shards,
    shard_rows_for_budget,
)

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")
DEFAULT_SHARD_ROWS = 102_400  # 50 cache chunks; 150 MB of 384-d float32
SCALE = "scale (see docs/scale.md)"  # --help group


@dataclass(frozen=True)
class EngineConfig:
    """Settings of the engine; saved in mining meta files (``asdict``). ``hardneg mine`` offers all but
    ``gpus_per_worker``, ``shard_rows`` and ``search_block`` as flags."""

    name: str = opt("local", "where dense teachers encode and search: this process or a Ray cluster; same output "
                    "either way", choices=ENGINES, flag="--engine", group=SCALE)
    address: str | None = opt(None, "Ray cluster to join ('auto', 'ray://head:10001')", flag="--ray-address",
                              metavar="ADDR", default_help="start a local Ray instance", group=SCALE)
    workers: int | None = opt(None, "ray: encoding actors", default_help="one per GPU, else one per CPU", group=SCALE)
    cpus_per_worker: float = opt(1.0, "ray: CPUs (and torch threads) per encoding actor / search task. Output is "
                                 "byte-identical to --engine local when workers run the same kernels: same device "
                                 "and threads as the local run (torch may split some reductions by thread count)",
                                 group=SCALE)
    gpus_per_worker: float | None = opt(None, "ray: GPUs per encoding actor", default_help="1 when the cluster has "
                                        "GPUs, else 0", group=SCALE)
    max_memory: int | None = opt(None, "bound the corpus vectors held in RAM (e.g. 2GB): the corpus is encoded into "
                                 "shards on disk (resumable) and search streams them", metavar="SIZE",
                                 default_help="hold the whole matrix", convert=parse_bytes, group=SCALE)
    shard_rows: int | None = opt(None, "explicit rows per shard (overrides max_memory)",
                                 default_help=f"{DEFAULT_SHARD_ROWS} or set by max_memory", group=SCALE)
    shard_dtype: str = opt("float32", "on-disk dtype of corpus shards (float16 halves disk and memory)",
                           choices=DTYPES, group=SCALE)
    search_block: int = opt(8192, "ray: queries per search task (whole multiples of topk's chunk)", group=SCALE)

    def __post_init__(self):
        if self.name not in ENGINES:
            raise HardnegError(f"unknown engine {self.name!r}: choose one of {', '.join(ENGINES)}")
        if self.shard_dtype not in DTYPES:
            raise HardnegError(f"unknown shard dtype {self.shard_dtype!r}: choose float32 or float16")
        if self.workers is not None and self.workers < 1:
            raise HardnegError(f"--workers must be at least 1, got {self.workers}")
        if self.shard_rows is not None and self.shard_rows < 1:
            raise HardnegError(f"shard rows must be positive, got {self.shard_rows}")

    @property
    def sharded(self) -> bool:
        return self.name != "local" or self.max_memory is not None or self.shard_rows is not None

    def rows_per_shard(self, dim: int) -> int:
        if self.shard_rows is not None:
            return self.shard_rows
        if self.max_memory is None:
            return DEFAULT_SHARD_ROWS
        return shard_rows_for_budget(dim, self.shard_dtype, self.max_memory)

    def to_dict(self) -> dict:
        return asdict(self)


def shards_dir(fingerprint: str, kind: str, texts: Sequence[str], dtype: str, cache_dir=None) -> Path:
    """Cache folder of one sharded encoding (encoder fingerprint, kind, texts, dtype)."""
    key = hashlib.sha256(f"shards-v1\0{fingerprint}\0{kind}\0{sha256_texts(texts)}\0{dtype}".encode()).hexdigest()
    return cache_root(cache_dir) / "shards" / key[:32]


def _complete(root: Path):
    """The finished ``ShardSet`` in ``root``, or None."""
    if not (root / MANIFEST).is_file():
        return None
    try:
        return ShardSet.open(root)
    except HardnegError:
        return None




class Workers:
    """The encoders of one engine for one model: a local encoder, or a pool of Ray actors.

    ``factory`` is a zero-argument callable returning an ``Encoder`` (it is pickled to the Ray
    actors, which each call it once). Close it (or use ``with``) to free Ray's CPU slots.
    """

    def __init__(self, engine: EngineConfig, factory: Callable, name: str, fingerprint: str):
        self.engine, self.factory, self.name, self.fingerprint = engine, factory, name, fingerprint
        self._local = None
        self._pool = None

    def _ray(self):
        if self._pool is None:
            from hardneg.scale.ray_engine import ActorEncoders

            self._pool = ActorEncoders(self.engine, self.factory)
        return self._pool

    def encoder(self):
        if self._local is None:
            self._local = self.factory()
        return self._local

    def dim(self) -> int:
        if self.engine.name == "ray":
            return self._ray().dim()
        return encoder_dim(self.encoder())

    def encode(self, texts: Sequence[str], kind: str, *, cache_dir=None, progress: bool = True):
        """``texts`` encoded into a (cached, resumable) shard folder -> ``ShardSet``."""
        texts = list(texts)
        root = shards_dir(self.fingerprint, kind, texts, self.engine.shard_dtype, cache_dir)
        done = _complete(root)
        if done is not None and len(done) == len(texts):
            return done
        rows = self._folder_rows(root) or self.engine.rows_per_shard(self.dim())
        if self.engine.name == "local":
            return encode_sharded(self.encoder(), texts, root, shard_size=rows, dtype=self.engine.shard_dtype,
                                  kind=kind, progress=progress)
        plan = plan_shards(self, texts, root, shard_size=rows, dtype=self.engine.shard_dtype, kind=kind)
        return self._ray().encode(plan, texts, progress=progress)

    @staticmethod
    def _folder_rows(root: Path) -> int | None:
        """The shard size an unfinished folder was started with: a resumed run keeps it (a changed
        --max-memory applies to new folders), so the shards already written stay valid."""
        try:
            rows = int(read_json(root / MANIFEST)["shard_size"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        log.info("resuming %s with its shard size of %d rows", root, rows)
        return rows

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def search(engine: EngineConfig, queries: np.ndarray, passages, k: int, *, backend: str = "exact",
           key: np.ndarray | None = None, exclude=None, ann=None, progress: bool = False,
           info: dict | None = None):
    """``hardneg.search.dispatch.search`` on this engine. On Ray, exact search runs as tasks over blocks
    of queries (each streaming the shards); FAISS backends run in this process."""
    from hardneg.search.dispatch import search as local_search

    if engine.name == "ray" and backend == "exact":
        from hardneg.scale.ray_engine import search_ray

        return search_ray(engine, queries, passages, k, key=key, exclude=exclude, progress=progress)
    if engine.name == "ray":
        log.info("search backend %s runs on the driver; --engine ray distributes encoding and exact search", backend)
    return local_search(queries, passages, k, backend=backend, key=key, exclude=exclude, ann=ann,
                        progress=progress, info=info)
