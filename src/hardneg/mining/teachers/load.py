"""``load_teacher(spec)``: ``bm25``, ``random`` or any model spec -> a ``Teacher``.
"""

from __future__ import annotations

import logging
from pathlib import Path


from hardneg.core.errors import HardnegError
from hardneg.core.fingerprint import model_fingerprint
from hardneg.mining.candidates import Teacher
from hardneg.mining.teachers.pool_cache import short_hash

log = logging.getLogger(__name__)
from hardneg.mining.teachers.bm25 import BM25Teacher
from hardneg.mining.teachers.dense import DenseTeacher
from hardneg.mining.teachers.rescored import RescoredTeacher
from hardneg.mining.teachers.uniform import RandomTeacher


def load_teacher(spec: str, *, backend: str = "torch", batch_size: int = 32, max_length: int | None = None,
                 query_prompt: str = "", passage_prompt: str = "", rescore_with: str | None = None,
                 cache_dir: str | Path | None = None, seed: int = 42, search_backend: str = "exact",
                 recall_check: int = 0, engine=None) -> Teacher:
    """``"bm25"``, ``"random"`` or any model ``hardneg.encode.load_encoder`` accepts.

    Dense models load lazily (only when a pool is not cached); a spec that is not a loadable model
    fails with a HardnegError naming it. ``rescore_with`` wraps the teacher in ``RescoredTeacher``.
    ``search_backend`` / ``recall_check`` / ``engine`` (``hardneg.scale.engine.EngineConfig``) apply to dense
    teachers (see ``DenseTeacher``).
    """
    if spec == "bm25":
        teacher: Teacher = BM25Teacher(cache_dir=cache_dir)
    elif spec == "random":
        teacher = RandomTeacher(seed, cache_dir=cache_dir)
    else:
        teacher = _dense_teacher(spec, backend=backend, batch_size=batch_size, max_length=max_length,
                                 query_prompt=query_prompt, passage_prompt=passage_prompt, cache_dir=cache_dir,
                                 search_backend=search_backend, recall_check=recall_check, engine=engine)
    if rescore_with:
        from hardneg.encode.models import resolve_model

        ce_path = resolve_model(rescore_with)  # HardnegError naming the spec when it is not found
        teacher = RescoredTeacher(teacher, ce_path, batch_size=batch_size, cache_dir=cache_dir,
                                  name=rescore_with, fingerprint=model_fingerprint(ce_path, cache_dir))
    return teacher


def _dense_teacher(spec: str, *, cache_dir, search_backend: str = "exact", recall_check: int = 0, engine=None,
                   **kwargs) -> DenseTeacher:
    from hardneg.encode.load import load_encoder
    from hardneg.encode.models import resolve_model

    path = resolve_model(spec)
    settings = short_hash(":".join(f"{k}={v}" for k, v in sorted(kwargs.items())))

    def load():
        try:
            return load_encoder(spec, cache_dir=cache_dir, **kwargs)
        except HardnegError:
            raise
        except Exception as e:  # noqa: BLE001 - any failure here is the user's spec
            raise HardnegError(f"could not load teacher {spec!r}: {e}") from None

    fp = f"dense:{model_fingerprint(path, cache_dir)}:{settings}"  # the model loads only on a cache miss
    return DenseTeacher(load, name=spec, fingerprint=fp, cache_dir=cache_dir, search_backend=search_backend,
                        recall_check=recall_check, engine=engine)
