"""``load_teacher(spec, settings)``: ``bm25``, ``random`` or any model spec -> a ``Teacher``;
``TeacherSettings``: how dense teachers encode and search (the ``mine`` command's teacher flags).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from hardneg.core.errors import HardnegError
from hardneg.core.fingerprint import model_fingerprint
from hardneg.core.options import opt
from hardneg.encode.base import ENCODER_BACKENDS
from hardneg.mining.candidates import Teacher
from hardneg.mining.teachers.bm25 import BM25Teacher
from hardneg.mining.teachers.dense import DenseTeacher
from hardneg.mining.teachers.fused import FUSE_PREFIX, FusedTeacher, parse_fuse_spec
from hardneg.mining.teachers.pool_cache import short_hash
from hardneg.mining.teachers.rescored import RescoredTeacher
from hardneg.mining.teachers.uniform import RandomTeacher
from hardneg.search.ann import SEARCH_BACKENDS

log = logging.getLogger(__name__)


TEACHER_MODELS = "teacher models"  # --help group


@dataclass(frozen=True)
class TeacherSettings:
    """How dense teachers encode and search (BM25 and random teachers use only ``cache_dir``)."""

    backend: str = opt("torch", "encoder backend for dense teachers", choices=ENCODER_BACKENDS, group=TEACHER_MODELS)
    batch_size: int = opt(32, "encoding batch size", group=TEACHER_MODELS)
    max_length: int | None = opt(None, "max tokens per text, queries and passages alike (train splits it: "
                                 "--query-max-length / --passage-max-length)", default_help="the model's",
                                 group=TEACHER_MODELS)
    query_prompt: str = opt("", "text put before every query, e.g. 'query: ' (as evaluate's and train's "
                            "--query-prompt)", metavar="TEXT", group=TEACHER_MODELS)
    passage_prompt: str = opt("", "text put before every passage, e.g. 'passage: '", metavar="TEXT",
                              group=TEACHER_MODELS)
    rescore_with: str | None = opt(None, "rescore each teacher's pool with this cross-encoder before filtering",
                                   metavar="CROSS_ENCODER", default_help="off", group=TEACHER_MODELS)
    cache_dir: str | None = opt(None, "embedding/pool cache", default_help="$HARDNEG_CACHE or ~/.cache/hardneg",
                                group=TEACHER_MODELS)
    search_backend: str = opt("exact", "dense teachers' corpus search: exact or a FAISS index (faster, approximate)",
                              choices=SEARCH_BACKENDS, group=TEACHER_MODELS)
    recall_check: int = opt(0, "with a FAISS backend: compare N sampled queries with exact search; recall@depth "
                            "goes into the meta file", metavar="N", default_help="0, off", group=TEACHER_MODELS)

    def __post_init__(self) -> None:
        for name, allowed in (("backend", ENCODER_BACKENDS), ("search_backend", SEARCH_BACKENDS)):
            if getattr(self, name) not in allowed:
                raise HardnegError(f"unknown {name} {getattr(self, name)!r}; choose one of: {', '.join(allowed)}")
        if self.batch_size < 1 or self.recall_check < 0 or (self.max_length is not None and self.max_length < 1):
            raise HardnegError(f"batch_size and max_length must be >= 1 and recall_check >= 0, got "
                               f"{self.batch_size}, {self.max_length}, {self.recall_check}")


NON_DENSE = ("bm25", "random")
DENSE_ONLY = ("backend", "max_length", "query_prompt", "passage_prompt", "search_backend", "recall_check")


def unused_settings(specs, settings: TeacherSettings) -> list[str]:
    """The dense-only settings changed from their defaults in a run with no dense teacher (BM25 and
    random ignore them), as flags: ``["--backend onnx"]``.

    >>> unused_settings(["bm25"], TeacherSettings(backend="onnx"))
    ['--backend onnx']
    >>> unused_settings(["bm25", "minilm"], TeacherSettings(backend="onnx"))
    []
    """
    if any(spec not in NON_DENSE for spec in specs):
        return []
    default = TeacherSettings()
    return [f"--{name.replace('_', '-')} {getattr(settings, name)}" for name in DENSE_ONLY
            if getattr(settings, name) != getattr(default, name)]


def load_teacher(spec: str, settings: TeacherSettings | None = None, *, seed: int = 42, engine=None,
                 **overrides) -> Teacher:
    """``"bm25"``, ``"random"``, any model ``hardneg.encode.load_encoder`` accepts, or ``"fuse:A+B[+...]"``
    (``"fuse:minilm=2+bm25"`` with weights): those teachers fused by per-query z-scores (``FusedTeacher``).

    ``settings`` (default ``TeacherSettings()``) with ``overrides`` (its field names, e.g.
    ``cache_dir=...``) replaced. Dense models load lazily (only when a pool is not cached); a spec
    that is not a loadable model fails with a HardnegError naming it. ``rescore_with`` wraps the
    teacher in ``RescoredTeacher``. ``search_backend`` / ``recall_check`` / ``engine``
    (``hardneg.scale.engine.EngineConfig``) apply to dense teachers (see ``DenseTeacher``).
    """
    s = replace(settings or TeacherSettings(), **overrides)
    cache_dir = s.cache_dir
    if spec.startswith(FUSE_PREFIX):
        names, weights = parse_fuse_spec(spec)
        parts = [load_teacher(n, replace(s, rescore_with=None), seed=seed, engine=engine) for n in names]
        teacher: Teacher = FusedTeacher(parts, weights, name=spec, cache_dir=cache_dir)
    elif spec == "bm25":
        teacher = BM25Teacher(cache_dir=cache_dir)
    elif spec == "random":
        teacher = RandomTeacher(seed, cache_dir=cache_dir)
    else:
        teacher = _dense_teacher(spec, backend=s.backend, batch_size=s.batch_size, max_length=s.max_length,
                                 query_prompt=s.query_prompt, passage_prompt=s.passage_prompt, cache_dir=cache_dir,
                                 search_backend=s.search_backend, recall_check=s.recall_check, engine=engine)
    if s.rescore_with:
        from hardneg.encode.models import resolve_model

        ce_path = resolve_model(s.rescore_with)  # HardnegError naming the spec when it is not found
        teacher = RescoredTeacher(teacher, ce_path, batch_size=s.batch_size, cache_dir=cache_dir,
                                  name=s.rescore_with, fingerprint=model_fingerprint(ce_path, cache_dir))
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
