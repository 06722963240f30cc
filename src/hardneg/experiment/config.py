"""``AblationConfig``: the grid of an ablation, from a TOML recipe plus command-line overrides.

Recipe layout (every key optional; defaults below; ``hardneg ablate --config quick`` names a
built-in recipe in ``hardneg/recipes/ablation-<name>.toml``)::

    [ablation]
    data = "scifact"              # BEIR folder or name
    student = "minilm"
    teachers = ["minilm"]         # "bm25", "random" or any model spec
    methods = ["naive", "percpos:0.95"]   # naive | shifted:N | abs:T | marginpos:M | percpos:P
                                  # + "+judge" (agreement judge, remove) or "+relabel" (judge, relabel)
                                  # + "+simans" (SimANS selection), "+kl" / "+margin-mse" (distillation from
                                  #   the teacher scores; "+kl-only": the KL term without InfoNCE), "+refresh" (re-mine with the student every
                                  #   refresh_every), "+bucket" (length-bucketed batches), "+bf16" (bf16
                                  #   autocast training), "+deepen" (re-search short queries deeper until
                                  #   full), "+pad" (keep short rows, their empty slots masked); combinable
    judge_voters = ["bm25"]       # teachers that vote in the judge of "+judge" / "+relabel" rows
    references = ["base"]         # base | random | inbatch | peer
    seeds = [0]
    [train]                       # TrainSettings
    epochs = 1
    precision = "fp32"            # "bf16": every trained cell, the peer's included, trains under bf16 autocast
    [eval]
    backend = "torch"
    [fn_probe]                    # optional false-negative probe (mining only)
    data = "msmarco-nano"
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hardneg.core.errors import DataError, HardnegError
from hardneg.core.recipes import load_recipe_toml

METHOD_PARAM = {"naive": None, "shifted": ("shift", int), "abs": ("max_score", float),
                "marginpos": ("margin", float), "percpos": ("perc", float)}
REFERENCES = ("base", "random", "inbatch", "peer")  # peer: sentence-transformers' mine_hard_negatives + MNRL
VARIANTS = {"judge": "remove", "relabel": "relabel"}  # "percpos:0.95+judge": the method, then the judge's action
SELECT_VARIANTS = ("simans",)  # "+simans": SimANS sampling instead of the recipe's selection
MINE_VARIANTS = ("deepen",)  # "+deepen": rows short of num_negatives are re-searched at doubling depth (on_shortfall)
TRAIN_VARIANTS = ("kl", "kl-only", "margin-mse", "refresh", "bucket", "bf16", "pad")  # distillation, re-mining with the student,
# bucketed batches, bf16 autocast training (fast on CPUs with AVX512-BF16 / AMX; weights stay fp32)
DISTILL_VARIANTS = ("kl", "kl-only", "margin-mse")  # kl-only: the KL term alone, no InfoNCE (soft labels only)
LABELS = ("full", "sparse")  # sparse: one known positive per training query, the others held out
BACKENDS = ("torch", "torch-bf16", "onnx", "onnx-int8")


def method_settings(spec: str) -> dict[str, Any]:
    """``"percpos:0.95"`` -> ``{"method": "percpos", "perc": 0.95}`` (MineConfig keywords).

    >>> method_settings("shifted:10"), method_settings("naive")
    ({'method': 'shifted', 'shift': 10}, {'method': 'naive'})
    """
    name, _, value = spec.partition(":")
    if name not in METHOD_PARAM:
        raise HardnegError(f"unknown mining method {spec!r}; use one of naive, shifted:10, abs:0.7, "
                           "marginpos:0.05, percpos:0.95")
    param = METHOD_PARAM[name]
    if param is None:
        if value:
            raise HardnegError(f"method {name!r} takes no setting, got {spec!r}")
        return {"method": name}
    if not value:
        raise HardnegError(f"method {name!r} needs a setting, e.g. {name}:{ {'shift': 10, 'max_score': 0.7, 'margin': 0.05, 'perc': 0.95}[param[0]] }")
    try:
        return {"method": name, param[0]: param[1](value)}
    except ValueError:
        raise HardnegError(f"method {spec!r}: {value!r} is not a valid {param[1].__name__}") from None


def row_parts(spec: str) -> tuple[str, tuple[str, ...]]:
    """A method row's spec -> (method, its ``+variants``), checked: at most one judge variant and one
    distillation loss.

    >>> row_parts("percpos:0.95+judge+kl"), row_parts("naive")
    (('percpos:0.95', ('judge', 'kl')), ('naive', ()))
    """
    method, *parts = spec.split("+")
    known = (*VARIANTS, *SELECT_VARIANTS, *MINE_VARIANTS, *TRAIN_VARIANTS)
    for part in parts:
        if part not in known:
            raise HardnegError(f"unknown method variant {part!r} in {spec!r}; use one of "
                               + ", ".join(f"+{v}" for v in known))
    if len(parts) != len(set(parts)):
        raise HardnegError(f"a variant is repeated in {spec!r}")
    for group in (tuple(VARIANTS), DISTILL_VARIANTS):
        if sum(p in group for p in parts) > 1:
            raise HardnegError(f"{spec!r} combines {' and '.join('+' + p for p in parts if p in group)}: choose one")
    method_settings(method)
    return method, tuple(parts)


def split_variant(spec: str) -> tuple[str, str | None]:
    """``"percpos:0.95+relabel"`` -> ``("percpos:0.95", "relabel")``: the method and its judge variant
    (None without one; the selection and training variants are read by ``row_parts``).

    >>> split_variant("percpos:0.95+judge"), split_variant("naive"), split_variant("percpos:0.95+kl")
    (('percpos:0.95', 'judge'), ('naive', None), ('percpos:0.95', None))
    """
    method, parts = row_parts(spec)
    return method, next((p for p in parts if p in VARIANTS), None)


def train_variant(spec: str, refresh_every: float) -> dict[str, Any]:
    """The TrainConfig settings a row's training variants set (``{}`` for none).

    >>> train_variant("percpos:0.95+margin-mse+bucket", 0.5)
    {'distill': 'margin-mse', 'bucket_batches': True}
    >>> train_variant("percpos:0.95+bucket+bf16", 0.5), train_variant("naive+kl-only", 0.5)
    ({'bucket_batches': True, 'precision': 'bf16'}, {'distill': 'kl', 'distill_only': True})
    """
    out: dict[str, Any] = {}
    for part in row_parts(spec)[1]:
        if part in ("kl", "margin-mse"):
            out["distill"] = part
        elif part == "kl-only":
            out.update(distill="kl", distill_only=True)
        elif part == "refresh":
            out["refresh_every"] = refresh_every
        elif part == "bucket":
            out["bucket_batches"] = True
        elif part == "bf16":
            out["precision"] = "bf16"
        elif part == "pad":
            out["short_rows"] = "pad"
    return out


def select_variant(spec: str) -> str | None:
    """The selection a row overrides (``+simans``), else None.

    >>> select_variant("percpos:0.95+simans"), select_variant("naive")
    ('simans', None)
    """
    return next((p for p in row_parts(spec)[1] if p in SELECT_VARIANTS), None)


@dataclass(frozen=True)
class TrainSettings:
    """Student fine-tuning settings shared by every trained cell."""

    epochs: float = 1.0
    batch_size: int = 32
    lr: float = 2e-5
    temperature: float = 0.05
    query_max_length: int = 64
    passage_max_length: int = 256
    in_batch_negatives: bool = True
    warmup_ratio: float = 0.1  # fraction of the steps
    precision: str = "fp32"  # "bf16": every trained cell (the peer's too) trains under bf16 autocast, like "+bf16"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "lr", "temperature", "query_max_length", "passage_max_length"):
            if not getattr(self, name) > 0:
                raise HardnegError(f"train.{name} must be > 0, got {getattr(self, name)}")
        if self.precision not in ("fp32", "bf16"):
            raise HardnegError(f"train.precision must be fp32 or bf16, got {self.precision!r}")

    def spec(self) -> dict:
        """The settings as they enter a cell id: ``precision`` only when not fp32, so the ids of before stay.

        >>> "precision" in TrainSettings().spec(), TrainSettings(precision="bf16").spec()["precision"]
        (False, 'bf16')
        """
        out = dataclasses.asdict(self)
        if self.precision == "fp32":
            del out["precision"]
        return out


@dataclass(frozen=True)
class AblationConfig:
    data: str = "scifact"
    train_split: str = "train"
    eval_split: str = "test"
    student: str = "minilm"
    teachers: tuple[str, ...] = ("minilm",)
    teacher_backend: str = "torch"
    teacher_max_length: int | None = None  # None: the teacher model's own max length
    methods: tuple[str, ...] = ("naive", "percpos:0.95")
    references: tuple[str, ...] = ("base",)
    seeds: tuple[int, ...] = (0,)
    num_negatives: int = 4
    selection: str = "top"
    depth: int = 100
    max_train_queries: int | None = None  # a seeded subset of training queries (None = all)
    train: TrainSettings = field(default_factory=TrainSettings)
    eval_backend: str = "torch"
    eval_max_length: int | None = None  # None: the student's own max length
    judge_voters: tuple[str, ...] = ("bm25",)  # teachers that only vote in a "+judge" / "+relabel" row's judge
    judge_min_votes: int = 1
    judge_frac: float = 0.95
    refresh_every: float = 0.5  # "+refresh" rows: re-mine every N steps (>= 1) or this fraction of an epoch (< 1)
    peer_relative_margin: float = 0.05  # the peer row: sentence-transformers' mine_hard_negatives(relative_margin=)
    fn_probe_data: str | None = None
    fn_probe_split: str = "test"
    labels: str = "full"  # "sparse": miner and trainer see one positive per query (see stages.sparse_labels)
    probe_only: bool = False  # plan only the fn_probe cells (no training, no evaluation)
    keep_models: bool = False
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        for name in ("teachers", "methods", "references", "seeds", "judge_voters"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        for m in self.methods:
            split_variant(m)
        if any(split_variant(m)[1] for m in self.methods) and self.judge_min_votes > 1 + len(self.judge_voters):
            raise HardnegError(f"judge_min_votes ({self.judge_min_votes}) exceeds the teacher plus its "
                               f"{len(self.judge_voters)} judge_voters")
        bad = [r for r in self.references if r not in REFERENCES]
        if bad:
            raise HardnegError(f"unknown reference rows {bad}; choose from {', '.join(REFERENCES)}")
        for name in ("teacher_backend", "eval_backend"):
            if getattr(self, name) not in BACKENDS:
                raise HardnegError(f"{name} must be one of {', '.join(BACKENDS)}, got {getattr(self, name)!r}")
        if not self.seeds:
            raise HardnegError("seeds must name at least one seed, e.g. seeds = [0, 1]")
        if self.num_negatives < 1 or self.depth < self.num_negatives:
            raise HardnegError(f"need 1 <= num_negatives ({self.num_negatives}) <= depth ({self.depth})")
        if self.max_train_queries is not None and self.max_train_queries < 1:
            raise HardnegError("max_train_queries must be >= 1 (or left out for all queries)")
        if self.methods and not self.teachers:
            raise HardnegError("methods need at least one teacher")
        if self.labels not in LABELS:
            raise HardnegError(f"labels must be one of {', '.join(LABELS)}, got {self.labels!r}")
        if self.probe_only and not self.fn_probe_data:
            raise HardnegError("probe_only needs fn_probe_data (a dataset with many judged positives)")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def describe(self) -> list[str]:
        """Lines for the report header: what was run and what was traded for speed."""
        probe = (f"- false-negative probe on `{self.fn_probe_data}` ({self.fn_probe_split}): mining with only each "
                 "query's best-graded positive known; a mined negative that is judged relevant is a false negative")
        if self.probe_only:
            return [f"- teachers {', '.join(f'`{x}`' for x in self.teachers)} (backend {self.teacher_backend}); "
                    f"{self.num_negatives} negatives per query, selection `{self.selection}` from depth {self.depth}",
                    probe]
        t = self.train
        q = f"{self.max_train_queries} (seeded subset)" if self.max_train_queries else "all"
        return [f"- data `{self.data}`: train on split `{self.train_split}` ({q} queries), "
                f"evaluate on `{self.eval_split}`",
                f"- student `{self.student}`; teachers {', '.join(f'`{x}`' for x in self.teachers)} "
                f"(backend {self.teacher_backend}, max length {self.teacher_max_length or 'model default'}); "
                f"{self.num_negatives} negatives per example, selection "
                f"`{self.selection}` from depth {self.depth}; seeds {list(self.seeds)}",
                f"- training: {t.epochs:g} epoch(s), batch {t.batch_size}, lr {t.lr:g}, τ {t.temperature:g}, "
                f"max length query {t.query_max_length} / passage {t.passage_max_length}, "
                f"in-batch negatives {'on' if t.in_batch_negatives else 'off'}"
                + (", bf16 autocast (every trained row)" if t.precision == "bf16" else ""),
                f"- evaluation backend {self.eval_backend}, max length {self.eval_max_length or 'model default'}",
                *([probe] if self.fn_probe_data else []),
                *([f"- `+judge` / `+relabel` rows: the agreement judge (teacher + voters "
                   f"{', '.join(f'`{v}`' for v in self.judge_voters)}; flagged when ≥ {self.judge_min_votes} score a "
                   f"candidate at or above {self.judge_frac:g} of their positive's score) removes / relabels what it flags"]
                  if any(split_variant(m)[1] for m in self.methods) else []),
                *([f"- peer row: sentence-transformers `mine_hard_negatives(relative_margin={self.peer_relative_margin:g}, "
                   f"num_negatives={self.num_negatives}, sampling_strategy='top', output_format='n-tuple')` at its "
                   "default range_max, trained by plain `MultipleNegativesRankingLoss` at the same settings"]
                  if "peer" in self.references else []),
                *(["- sparse labels: miner and trainer see only each training query's best-graded positive; the "
                   "others are held out and judge the mined negatives (false-negative table)"]
                  if self.labels == "sparse" else [])]


SECTIONS = {"ablation": None, "train": "train", "eval": "eval_", "fn_probe": "fn_probe_"}


def load_config(spec: str | Path, **overrides: Any) -> AblationConfig:
    """Read a TOML recipe (a path, or a built-in name like ``quick``) and apply non-None overrides."""
    path, raw, text = load_recipe_toml(spec, "ablation")
    flat: dict[str, Any] = {}
    train: dict[str, Any] = {}
    known = {f.name for f in dataclasses.fields(AblationConfig)}
    train_known = {f.name for f in dataclasses.fields(TrainSettings)}
    for section, values in raw.items():
        if section not in SECTIONS or not isinstance(values, dict):
            raise DataError(path, _line_of(text, f"[{section}]"), f"unknown section [{section}]",
                            f"use {', '.join(f'[{s}]' for s in SECTIONS)}")
        for key, value in values.items():
            if section == "train":
                ok, target, name = key in train_known, train, key
            else:
                name = ("" if section == "ablation" else SECTIONS[section]) + key
                ok, target = name in known and name != "train", flat
            if not ok:
                options = sorted(train_known) if section == "train" else sorted(
                    k.removeprefix(SECTIONS[section] or "") for k in known
                    if section == "ablation" or k.startswith(SECTIONS[section]))
                raise DataError(path, _line_of(text, key), f"unknown key {key!r} in [{section}]",
                                f"known keys: {', '.join(options)}")
            target[name] = value
    train.update({k: v for k, v in overrides.pop("train", {}).items() if v is not None})
    flat.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return AblationConfig(**flat, train=TrainSettings(**train))
    except TypeError as e:
        raise DataError(path, None, f"bad value: {e}") from None




def _line_of(text: str, needle: str) -> int | None:
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip().startswith(needle):
            return i
    return None
