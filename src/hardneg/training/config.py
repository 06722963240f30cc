"""``TrainConfig`` and ``Source``: every setting of a training run, validated once, saved in its meta file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any


from hardneg.core.errors import HardnegError

log = logging.getLogger(__name__)


META_NAME = "hardneg_train"  # -> DIR/hardneg_train.meta.json, written last: marks a finished run


CHECKPOINTS = "checkpoints"


@dataclass(frozen=True)
class Source:
    """One training set of a data mix: data spec + its negatives file."""

    data: str
    negatives: str
    split: str = "train"
    max_examples: int | None = None  # seeded subsample of the (query, positive) rows


@dataclass(frozen=True)
class TrainConfig:
    model: str
    sources: tuple[Source, ...]
    output: str
    num_negatives: int = 1
    temperature: float = 0.05
    in_batch_negatives: bool = True
    mini_batch_size: int | None = None  # set -> GradCache
    query_prefix: str = ""
    passage_prefix: str = ""
    exclude_prefix: bool = True
    query_max_length: int | None = 64
    passage_max_length: int | None = 256
    lr: float = 2e-5
    warmup: float = 0.1  # < 1: fraction of the steps; >= 1: steps
    epochs: float = 1.0
    max_steps: int = -1
    batch_size: int = 32
    grad_accum: int = 1
    seed: int = 42
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    save_steps: int = 500
    save_total_limit: int | None = 2
    logging_steps: int = 10
    short_rows: str = "drop"  # rows with fewer than num_negatives negatives: drop | error
    lora: bool | None = None  # None: on for decoder LLMs, off otherwise
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    lora_merge: bool = True
    resume: bool = False

    def __post_init__(self) -> None:
        checks = [
            (bool(self.sources), "at least one data source (--data + --negatives) is needed"),
            (self.num_negatives >= 0, "--num-negatives must be >= 0"),
            (self.temperature > 0, "--temperature must be > 0"),
            (self.in_batch_negatives or self.num_negatives >= 1,
             "with in-batch negatives off, --num-negatives must be >= 1 (nothing else to contrast with)"),
            (self.batch_size >= 1 and self.grad_accum >= 1, "--batch-size and --grad-accum must be >= 1"),
            (self.mini_batch_size is None or self.mini_batch_size >= 1, "--mini-batch-size must be >= 1"),
            (self.lr > 0, "--lr must be > 0"),
            (self.epochs > 0 or self.max_steps > 0, "--epochs or --max-steps must be positive"),
            (self.precision in ("auto", "fp32", "bf16", "fp16"), "--precision is one of auto, fp32, bf16, fp16"),
            (self.short_rows in ("drop", "error"), "short_rows is 'drop' or 'error'"),
            (self.save_steps >= 1 and self.logging_steps >= 1, "save/logging steps must be >= 1"),
        ]
        for ok, msg in checks:
            if not ok:
                raise HardnegError(msg)
        for n in (self.query_max_length, self.passage_max_length):
            if n is not None and n < 2:
                raise HardnegError("max lengths must be >= 2 tokens (or unset)")


def with_overrides(config: TrainConfig, **kw: Any) -> TrainConfig:
    return replace(config, **kw)
