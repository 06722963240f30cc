"""``TrainConfig`` and ``Source``: every setting of a training run, validated once, saved in its meta file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from hardneg.core.errors import HardnegError
from hardneg.core.options import opt

log = logging.getLogger(__name__)


META_NAME = "hardneg_train"  # -> DIR/hardneg_train.meta.json, written last: marks a finished run


CHECKPOINTS = "checkpoints"


PRECISIONS = ("auto", "fp32", "bf16", "fp16")
SHORT_ROWS = ("drop", "error", "pad")
POSITIVES = ("one", "all")  # how a query's several positives enter the loss (losses.masked_infonce)
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")  # attention + MLP projections
LORA = "LoRA (decoder LLMs)"  # --help group
DISTILL_KINDS = ("kl", "margin-mse")  # losses.distill_kl / losses.margin_mse
DISTILL_NORMALIZE = ("auto", "none", "zscore", "minmax")  # per row over {positive} ∪ its negatives (examples)
DISTILL = "distillation from the negatives file's teacher scores"  # --help group
DISTILL_SCORE_UNIT = 1_000_000  # teacher logits ride in the int64 label column as round(x * this)


@dataclass(frozen=True)
class Source:
    """One training set of a data mix: data spec + its negatives file."""

    data: str = opt(help="training data (BEIR dir / name / JSONL / parquet); repeat with --negatives for a mix")
    negatives: str = opt(help="negatives JSONL from 'hardneg mine' (one per --data)")
    split: str = opt("train", "qrels split of each --data (as mine, export, inspect and tune)")
    max_examples: int | None = opt(None, "seeded subsample of each source's (query, positive) rows",
                                   default_help="all rows")


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run; ``hardneg train`` builds its flags from these fields."""

    model: str = opt(help="base model: path, hub id (offline cache) or alias 'minilm'")
    sources: tuple[Source, ...] = opt(help="the data mix (--data + --negatives)")
    output: str = opt(help="output folder (model + checkpoints/ + hardneg_train.meta.json)")
    num_negatives: int = opt(1, "hard negatives per example, the first n of each row in mined order. 1, not "
                             "mine's 4: every hard negative adds a passage per example to the batch (memory and "
                             "time ~(1 + n) passages per query); a file mined with mine's default holds 4 per row, "
                             "--num-negatives 4 uses them all (--short-rows: rows with fewer)")
    temperature: float = opt(0.05, "InfoNCE temperature τ (scale 1/τ; 0.05 = sentence-transformers' scale 20)")
    in_batch_negatives: bool = opt(True, "contrast each query only with its own positive and hard negatives",
                                   flag="--no-in-batch-negatives", default_help="off, in-batch negatives are used")
    mini_batch_size: int | None = opt(None, "GradCache mini-batch: large batches in bounded memory",
                                      default_help="off")
    query_prefix: str = opt("", "text put before every query (an instruction, e.g. 'Instruct: ...\\nQuery: '), as "
                            "mine's and evaluate's --query-prompt; saved with the model", flag="--query-prompt",
                            metavar="TEXT", deprecated=("--query-prefix",))
    passage_prefix: str = opt("", "text put before every passage, as mine's and evaluate's --passage-prompt",
                              flag="--passage-prompt", metavar="TEXT", deprecated=("--passage-prefix",))
    exclude_prefix: bool = opt(True, "pool over the prompt tokens too (sentence-transformers' include_prompt)",
                               flag="--include-prompt-in-pooling", deprecated=("--include-prefix-in-pooling",),
                               default_help="off, prompt tokens are excluded as in NV-Retriever")
    query_max_length: int | None = opt(64, "query truncation in tokens while training (overrides --max-length); the saved model keeps the base model's own limit unless this is longer")
    passage_max_length: int | None = opt(256, "passage truncation in tokens while training (overrides --max-length); saved as the query length is")
    lr: float = opt(2e-5, "peak learning rate (AdamW, linear decay)")
    warmup: float = opt(0.1, "warm-up: fraction of the steps if < 1, else steps")
    epochs: float = opt(1.0, "training epochs (fractions allowed)")
    max_steps: int = opt(-1, "stop after this many optimizer steps", default_help="-1, no limit")
    batch_size: int = opt(32, "examples per device per step (also the in-batch negatives pool)")
    grad_accum: int = opt(1, "gradient accumulation steps")
    seed: int = opt(42, "random seed (trainer, data order and --max-examples subsampling)")
    precision: str = opt("auto", "auto: bf16 on GPUs that have it, fp16 on other GPUs, fp32 on CPU",
                         choices=PRECISIONS)
    save_steps: int = opt(500, "checkpoint every N steps")
    save_total_limit: int | None = opt(2, "checkpoints kept (older ones are deleted)")
    logging_steps: int = opt(10, "log the loss every N steps")
    mask_positives: bool = opt(True, "keep every known positive of a query (all its rows' positives and "
                               "judge-relabelled passages, by id) out of its in-batch and hard negatives",
                               flag="--no-mask-positives", default_help="on")
    positives: str = opt("one", "several positives of a query in a batch: one = the row's own positive is the "
                         "target, the others are masked; all = every one of them counts in the numerator",
                         choices=POSITIVES)
    relabeled_rows: bool = opt(True, "add a training row for each judge-relabelled positive (with its query's "
                               "negatives)", flag="--no-relabeled-rows", default_help="on")
    short_rows: str = opt("drop", "rows with fewer than --num-negatives negatives: drop them, stop with an error, "
                          "or pad = keep them (their empty slots are masked out of the loss: the row trains with "
                          "the negatives it has and the in-batch ones; needs the positives mask; cheapest with "
                          "--bucket-batches)",
                          choices=SHORT_ROWS)
    distill: str | None = opt(None, "add a distillation term from the teacher scores of the negatives file: kl = "
                              "KL(teacher || student) over {positive} ∪ the row's negatives; margin-mse = MSE of "
                              "the student's positive-negative margins against the teacher's", choices=DISTILL_KINDS,
                              default_help="off", group=DISTILL)
    distill_weight: float = opt(1.0, "loss = InfoNCE + weight × distillation term", group=DISTILL)
    distill_only: bool = opt(False, "train on the distillation term alone (no InfoNCE term)", group=DISTILL)
    distill_temperature: float | None = opt(None, "teacher temperature: teacher logits = score / this (the student's "
                                            "are cosine / --temperature)", group=DISTILL,
                                            default_help="--temperature on raw scores, 1.0 on normalised ones")
    distill_normalize: str = opt("auto", "per-row normalisation of the teacher scores over {positive} ∪ negatives: "
                                 "zscore (mean 0, std 1), minmax (0..1) or none; auto = zscore when the file's "
                                 "teacher is BM25 or a cross-encoder (meta) or any score lies outside [-1, 1], "
                                 "none for cosine teachers", choices=DISTILL_NORMALIZE, group=DISTILL)
    lora: bool | None = opt(None, "train a LoRA adapter", default_help="on for decoder LLMs, off otherwise",
                            negate_help="train all weights, even of a decoder LLM", group=LORA)
    lora_r: int = opt(16, "LoRA rank r", group=LORA)
    lora_alpha: int = opt(32, "LoRA scaling alpha", group=LORA)
    lora_dropout: float = opt(0.1, "dropout on the LoRA path", group=LORA)
    lora_targets: tuple[str, ...] = opt(LORA_TARGETS, "comma-separated module names to adapt", group=LORA)
    lora_merge: bool = opt(True, "save the adapter instead of merged weights", flag="--lora-adapter-only",
                           default_help="off, merged weights are saved", group=LORA)
    resume: bool = opt(False, "continue from the last checkpoint in --output")
    refresh_every: float = opt(0.0, "re-mine the negatives with the student every N optimizer steps (a fraction < 1: "
                               "of an epoch), with the negatives file's own mining settings, then train on "
                               "(one step budget and LR schedule; see hardneg.experiment.refresh)", metavar="N",
                               default_help="0, off")
    bucket_batches: bool = opt(False, "length-bucketed batches: rows of similar token length share a batch "
                               "(less padding; same rows per epoch, no duplicate text in a batch, seeded order)",
                               default_help="off, sentence-transformers' no-duplicates batches")

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
            (self.precision in PRECISIONS, f"--precision is one of {', '.join(PRECISIONS)}"),
            (self.short_rows in SHORT_ROWS, f"short_rows is one of {', '.join(SHORT_ROWS)}"),
            (self.positives in POSITIVES, f"--positives is one of {', '.join(POSITIVES)}"),
            (self.positives == "one" or (self.mask_positives and self.in_batch_negatives),
             "--positives all needs the positives mask and in-batch negatives (drop --no-mask-positives / "
             "--no-in-batch-negatives)"),
            (self.short_rows != "pad" or (self.mask_positives and (self.in_batch_negatives or self.distill_only)
                                          and not self.mini_batch_size),
             "--short-rows pad needs the positives mask and in-batch negatives, without --mini-batch-size (the "
             "masked loss drops the padded slots)"),
            (self.save_steps >= 1 and self.logging_steps >= 1, "save/logging steps must be >= 1"),
            (self.refresh_every >= 0 and (self.refresh_every < 1 or float(self.refresh_every).is_integer()),
             "--refresh-every is 0 (off), a whole number of steps or a fraction of an epoch in (0, 1)"),
        ]
        for ok, msg in checks:
            if not ok:
                raise HardnegError(msg)
        _check_distill(self)
        for n in (self.query_max_length, self.passage_max_length):
            if n is not None and n < 2:
                raise HardnegError("max lengths must be >= 2 tokens (or unset)")


def with_overrides(config: TrainConfig, **kw: Any) -> TrainConfig:
    return replace(config, **kw)


def _check_distill(c: TrainConfig) -> None:
    checks = [
        (c.distill is None or c.distill in DISTILL_KINDS, f"--distill is one of {', '.join(DISTILL_KINDS)}"),
        (c.distill_normalize in DISTILL_NORMALIZE, f"--distill-normalize is one of {', '.join(DISTILL_NORMALIZE)}"),
        (c.distill is not None or not c.distill_only, "--distill-only needs --distill kl or --distill margin-mse"),
        (c.distill is None or c.num_negatives >= 1,
         "--distill needs --num-negatives >= 1 (the teacher scores are those of the row's mined negatives)"),
        (c.distill is None or c.distill_weight > 0, "--distill-weight must be > 0"),
        (c.distill_temperature is None or c.distill_temperature > 0, "--distill-temperature must be > 0"),
        (c.distill is None or not c.mini_batch_size,
         "--distill is not available with --mini-batch-size (GradCache) yet: drop one of them"),
    ]
    for ok, msg in checks:
        if not ok:
            raise HardnegError(msg)
