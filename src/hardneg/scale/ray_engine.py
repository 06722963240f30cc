"""The Ray engine (``--engine ray``): encoding on a pool of Ray actors, exact search as Ray tasks.

* Encoding: one actor per GPU (or per ``cpus_per_worker`` CPU slots), each loading the model once;
  shards are handed out by ``ray.util.ActorPool`` as actors free up, and the driver writes each
  returned shard atomically into the same folder layout as the local engine (``hardneg.scale.shards``),
  so a killed run resumes at the first missing shard on either engine.
* Search: the queries are cut into blocks of ``search_block`` rows (whole multiples of
  ``search.exact.topk``'s query chunk, so every score block is the one the local engine computes) and
  each block is one task that streams the corpus shards (``search.blocks.search_blocks``); results come
  back in query order.

On a cluster the shard folder (``--cache-dir``) must be on storage every node mounts, and hardneg
must be installed on every node (or shipped with ``runtime_env``). Without ``address`` a local Ray
instance with this machine's CPUs is started (what the tests do).
"""

from __future__ import annotations

import logging

import numpy as np

from hardneg.core.errors import HardnegError

log = logging.getLogger(__name__)


def connect(engine):
    """The ``ray`` module, initialised: joins ``engine.address`` or starts a local instance."""
    try:
        import ray
    except ImportError:
        raise HardnegError("--engine ray needs Ray: pip install 'hardneg[ray]' (or pip install ray)") from None
    if not ray.is_initialized():
        try:
            ray.init(address=engine.address, include_dashboard=False, log_to_driver=False,
                     ignore_reinit_error=True)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise HardnegError(f"could not start or join Ray (address {engine.address!r}): {e}") from None
        log.info("ray: %s", {k: v for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU", "memory")})
    return ray


def _threads(cpus: float) -> int:
    return max(1, int(cpus))


class _EncoderActor:
    """Holds one encoder; encodes whole shards (in the cache's chunks, as the local engine does)."""

    def __init__(self, factory, threads: int):
        import torch

        self.encoder = factory()
        torch.set_num_threads(threads)  # load_encoder sets all cores; this actor owns `threads`

    def dim(self) -> int:
        from hardneg.encode.base import encoder_dim

        return encoder_dim(self.encoder)

    def encode(self, i: int, texts: list[str], kind: str):
        from hardneg.scale.shards import encode_shard

        return i, encode_shard(self.encoder, texts, kind)


class ActorEncoders:
    """A pool of ``_EncoderActor`` sized from the cluster (or ``engine.workers``)."""

    def __init__(self, engine, factory):
        ray = connect(engine)
        from ray.util import ActorPool

        res = ray.cluster_resources()
        gpus = engine.gpus_per_worker
        if gpus is None:
            gpus = 1.0 if res.get("GPU", 0) >= 1 else 0.0
        slots = res.get("GPU", 0) / gpus if gpus else res.get("CPU", 1) / engine.cpus_per_worker
        n = engine.workers or max(1, int(slots))
        if int(slots) >= 1 and n > int(slots):  # actors beyond the free slots would wait forever
            log.warning("ray: %d workers asked, the cluster has room for %d; using %d", n, int(slots), int(slots))
            n = int(slots)
        cls = ray.remote(num_cpus=engine.cpus_per_worker, num_gpus=gpus)(_EncoderActor)
        self.ray = ray
        self.actors = [cls.remote(factory, _threads(engine.cpus_per_worker)) for _ in range(n)]
        self.pool = ActorPool(self.actors)
        log.info("ray: %d encoding actors (%s CPU, %s GPU each)", n, engine.cpus_per_worker, gpus)

    def dim(self) -> int:
        return self.ray.get(self.actors[0].dim.remote())

    def encode(self, plan, texts, progress: bool = True):
        from tqdm.auto import tqdm

        items = [(i, plan.texts(texts, i)) for i in plan.todo]
        with tqdm(total=sum(len(t) for _, t in items), desc=f"encode {plan.kind} shards (ray)", unit=plan.kind,
                  disable=not progress or not items) as bar:
            for i, arr in self.pool.map_unordered(lambda a, it: a.encode.remote(it[0], it[1], plan.kind), items):
                plan.write(i, arr)
                bar.update(len(arr))
        return plan.shardset()

    def close(self) -> None:
        for a in self.actors:
            self.ray.kill(a)
        self.actors = []


def _search_block(q, src, key, k, exclude, threads):
    import faiss
    import torch

    from hardneg.scale.shards import ShardSet
    from hardneg.search.blocks import search_blocks
    from hardneg.search.exact import topk

    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)  # Ray sets OMP_NUM_THREADS=1; FAISS's sums depend on its thread count
    if isinstance(src, str):
        return search_blocks(q, ShardSet.open(src), k, key=key, exclude=exclude)
    return topk(q, src, k, key=key, exclude=exclude)


def search_ray(engine, queries: np.ndarray, passages, k: int, *, key=None, exclude=None, progress: bool = False):
    """Exact top-k (same result as ``search.search(..., backend="exact")``) as Ray tasks over query blocks.

    ``passages`` is a ``ShardSet`` (workers read its folder) or an in-memory array (put in Ray's
    object store once).
    """
    from hardneg.scale.shards import ShardSet
    from hardneg.search.exact import QUERY_CHUNK
    from hardneg.search.rank import default_key

    ray = connect(engine)
    chunk = QUERY_CHUNK
    block = max(chunk, engine.search_block // chunk * chunk)
    n = len(passages)
    key = default_key(n) if key is None else np.asarray(key)
    src = str(passages.root) if isinstance(passages, ShardSet) else ray.put(np.ascontiguousarray(passages, np.float32))
    key_ref = ray.put(key)
    task = ray.remote(num_cpus=engine.cpus_per_worker)(_search_block)
    q = np.ascontiguousarray(queries, dtype=np.float32)
    starts = list(range(0, len(q), block))
    refs = [task.remote(q[s: s + block], src, key_ref, k, None if exclude is None else exclude[s: s + block],
                        _threads(engine.cpus_per_worker)) for s in starts]
    kk = max(0, min(k, n))
    out_s = np.full((len(q), kk), -np.inf, np.float32)
    out_i = np.full((len(q), kk), -1, np.int64)
    where = {r: s for r, s in zip(refs, starts)}
    from tqdm.auto import tqdm

    with tqdm(total=len(q), desc="search (ray)", unit="q", disable=not progress) as bar:
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            s = where[ready[0]]
            sc, ix = ray.get(ready[0])
            out_s[s: s + len(sc)], out_i[s: s + len(ix)] = sc, ix
            bar.update(len(sc))
    return out_s, out_i
