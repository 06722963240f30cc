"""Contrastive fine-tuning with mined hard negatives, on sentence-transformers' trainer.

``train(config) -> output dir``. What is ours is small: ids -> texts (query, positive, the first
``num_negatives`` mined negatives in mined order), the loss switch (``losses.py``), prefix-masked
pooling and per-kind max lengths (``prompts.py``), decoders + LoRA (``decoder.py``), provenance.

Columns handed to the trainer: ``anchor, positive, negative_1 .. negative_n``. The trainer applies
``query_prefix`` to ``anchor`` and ``passage_prefix`` to the others (``prompts``), tokenises
``anchor`` as task "query" and the rest as task "document" (``router_mapping``) so each gets its
own max length, and batches with ``BatchSamplers.NO_DUPLICATES`` (no text twice in a batch).

Multi-GPU: the trainer is HF ``Trainer``, so ``torchrun --nproc_per_node 8 -m hardneg train ...``
or ``accelerate launch -m hardneg train ...`` runs DDP unchanged (batch size is per device).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from hardneg.core.hardware import cpu_has_bf16
from hardneg.core.errors import HardnegError
from hardneg.core.files import write_json
from hardneg.core.provenance import write_meta

log = logging.getLogger(__name__)
from hardneg.core.fingerprint import model_fingerprint
from hardneg.encode.models import resolve_model
from hardneg.training.decoder import (LoraSettings, add_lora, build_decoder_embedder, has_lora, is_decoder, make_bidirectional, merge_lora, save_adapter_only)
from hardneg.training.prompts import configure_prefixes, restore_inference_lengths, set_max_lengths
from hardneg.training.config import CHECKPOINTS, META_NAME, TrainConfig
from hardneg.training.examples import build_dataset


def load_student(config: TrainConfig) -> Any:
    """Base model as a SentenceTransformer, with prefixes, pooling, max lengths and LoRA set up."""
    from sentence_transformers import SentenceTransformer

    path = resolve_model(config.model)
    dec = is_decoder(path)
    dtype = "bfloat16" if _precision(config.precision) == "bf16" else None
    try:
        if dec and not (Path(path) / "modules.json").exists():
            model = build_decoder_embedder(path, dtype=dtype)
        else:
            model = SentenceTransformer(path)
            if dec:
                make_bidirectional(model[0].auto_model)
    except (OSError, ValueError) as e:
        raise HardnegError(f"could not load model {config.model!r} ({path}): {e}") from None
    configure_prefixes(model, config.query_prefix, config.passage_prefix, config.exclude_prefix)
    set_max_lengths(model, config.query_max_length, config.passage_max_length)
    if config.lora if config.lora is not None else dec:
        add_lora(model, LoraSettings(config.lora_r, config.lora_alpha, config.lora_dropout,
                                                     tuple(config.lora_targets), config.lora_merge))
    return model


def _on_cpu() -> bool:
    """No GPU: the HF Trainer then needs ``use_cpu`` for bf16 (CPU autocast) instead of refusing it."""
    import torch

    return not torch.cuda.is_available()


def _precision(name: str) -> str:
    """'auto' -> bf16 on GPUs that have it, fp16 on other GPUs, fp32 on CPU."""
    if name != "auto":
        return name
    import torch

    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def column_settings(config: TrainConfig) -> tuple[dict[str, str], dict[str, str]]:
    """(prompts, router_mapping) per column: the query prefix/length for ``anchor``, passage for the rest.

    >>> from hardneg.training.config import Source
    >>> column_settings(TrainConfig("m", (Source("d", "n"),), "o", num_negatives=1, query_prefix="q: "))
    ({'anchor': 'q: '}, {'anchor': 'query', 'positive': 'document', 'negative_1': 'document'})
    """
    doc_cols = ["positive"] + [f"negative_{j}" for j in range(1, config.num_negatives + 1)]
    routes = {"anchor": "query", **{c: "document" for c in doc_cols}}
    prompts = {"anchor": config.query_prefix} if config.query_prefix else {}
    if config.passage_prefix:
        prompts.update({c: config.passage_prefix for c in doc_cols})
    return prompts, routes


def training_args(config: TrainConfig, ckpt_dir: Path) -> Any:
    from sentence_transformers import SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers

    prec = _precision(config.precision)
    if prec == "fp16" and _on_cpu():
        raise HardnegError("--precision fp16 needs a GPU; on a CPU use bf16 (autocast, fast where the CPU has "
                           "bf16 instructions, e.g. AVX512-BF16 or AMX) or fp32")
    if prec == "bf16" and _on_cpu() and cpu_has_bf16() is False:
        log.warning("--precision bf16 on a CPU without bf16 instructions (no avx512_bf16 / amx_bf16 flag): "
                    "autocast is emulated and much slower than fp32; use --precision fp32 here")
    prompts, routes = column_settings(config)
    warmup = config.warmup if config.warmup < 1 else int(config.warmup)
    return SentenceTransformerTrainingArguments(
        output_dir=str(ckpt_dir), num_train_epochs=config.epochs, max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size, gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.lr, warmup_steps=warmup, lr_scheduler_type="linear", seed=config.seed,
        data_seed=config.seed, bf16=prec == "bf16", fp16=prec == "fp16", use_cpu=_on_cpu(),
        batch_sampler=BatchSamplers.NO_DUPLICATES, prompts=prompts or None, router_mapping=routes,
        save_strategy="steps", save_steps=config.save_steps, save_total_limit=config.save_total_limit,
        logging_steps=config.logging_steps, logging_first_step=True, report_to="none",
        dataloader_num_workers=0, dataloader_pin_memory=prec != "fp32", disable_tqdm=False,
    )


def bucketed_sampler(config: TrainConfig, model: Any, dataset: Any) -> Any:
    """``--bucket-batches``: the batch sampler of ``training.batching`` with each row's truncated token cost
    (prefixes included, one tokenizer pass per run)."""
    import functools

    from hardneg.training.batching import BucketedNoDuplicatesBatchSampler, row_lengths

    prompts, routes = column_settings(config)
    text_cols = [c for c in dataset.column_names if c in routes]
    limits = {c: config.query_max_length if routes[c] == "query" else config.passage_max_length for c in text_cols}
    texts = dataset.select_columns(text_cols)
    if prompts:
        texts = texts.map(lambda row: {c: prompts.get(c, "") + row[c] for c in text_cols})
    lengths = row_lengths(texts, model.tokenizer, limits)
    return functools.partial(BucketedNoDuplicatesBatchSampler, lengths=lengths, text_columns=text_cols)


def last_complete_checkpoint(ckpt_dir: Path) -> str | None:
    """The newest COMPLETE checkpoint (its ``trainer_state.json`` is written last). A newer folder
    without one is what a kill during the save leaves: it is removed, with a warning, and training
    resumes from the one before."""
    if not ckpt_dir.is_dir():
        return None
    found = sorted((p for p in ckpt_dir.iterdir() if p.is_dir() and p.name.startswith("checkpoint-")
                    and p.name.rsplit("-", 1)[-1].isdigit()), key=lambda p: int(p.name.rsplit("-", 1)[-1]))
    while found and not (found[-1] / "trainer_state.json").is_file():
        log.warning("%s is incomplete (a run stopped while saving it): removing it and resuming from %s",
                    found[-1], found[-2].name if len(found) > 1 else "the start")
        shutil.rmtree(found.pop())
    return str(found[-1]) if found else None


def train(config: TrainConfig, callbacks: list | None = None, *, refresh: dict | None = None) -> Path:
    """Fine-tune ``config.model``; returns the output dir (loads with ``SentenceTransformer(DIR)``).

    ``refresh``: the re-mining record that ``hardneg.experiment.refresh`` (which runs ``refresh_every``,
    calling this once per round) puts in the model meta; training alone never re-mines.

    ``callbacks``: extra ``transformers.TrainerCallback`` objects (tests use one to stop early).
    """
    from hardneg.training.callbacks import loss_logger, quiet_progress
    from hardneg.training.losses import build_loss, with_distillation

    t0 = time.time()
    out = Path(config.output)
    ckpt_dir = out / CHECKPOINTS
    if is_finished(out):
        if config.resume:
            log.info("%s is already complete; nothing to resume", out)
            return out
        raise HardnegError(f"{out} already holds a trained model: choose a new --output")
    if config.refresh_every and refresh is None:
        raise HardnegError("refresh_every re-mines the negatives with the student, which training alone does not do: "
                           "run hardneg.experiment.refresh.train_with_refresh(config) (hardneg train --refresh-every)")
    resume_from = last_complete_checkpoint(ckpt_dir)
    if resume_from and not config.resume:
        raise HardnegError(f"{out} already has checkpoints ({Path(resume_from).name}): pass --resume "
                           "to continue, or choose a new --output")
    if config.resume and not resume_from:
        log.warning("--resume: no checkpoint in %s, starting from scratch", ckpt_dir)
    if config.short_rows == "pad" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise HardnegError("--short-rows pad is not available with multi-GPU training yet (the gathered in-batch "
                           "loss has no positives mask to drop the padded slots): use --short-rows drop")
    dataset, data_stats, codes = build_dataset(config)
    model = load_student(config)
    loss = build_loss(model, temperature=config.temperature, in_batch_negatives=config.in_batch_negatives,
                      mini_batch_size=config.mini_batch_size, num_negatives=config.num_negatives,
                      gather_across_devices=int(os.environ.get("WORLD_SIZE", "1")) > 1,
                      known=codes.known if codes is not None and config.in_batch_negatives else None,
                      positives=config.positives)
    if config.distill:  # + weight × distillation term from the label column's teacher logits
        loss = with_distillation(model, None if config.distill_only else loss, config.distill,
                                 weight=config.distill_weight, num_negatives=config.num_negatives,
                                 temperature=config.temperature,
                                 n_codes=2 + config.num_negatives if codes is not None else 0)
    if codes is not None and not config.in_batch_negatives and not config.distill:
        dataset = dataset.remove_columns("label")  # own negatives only: no other row's passage to mask
    targs = training_args(config, ckpt_dir)
    if config.bucket_batches:
        targs.batch_sampler = bucketed_sampler(config, model, dataset)
    trainer = _trainer_class(model)(model=model, args=targs, train_dataset=dataset,
                                    loss=loss, callbacks=[loss_logger(), *(callbacks or [])])
    quiet_progress(trainer)
    t_load = time.time() - t0
    result = trainer.train(resume_from_checkpoint=resume_from)
    t_train = time.time() - t0 - t_load
    if trainer.state.global_step < trainer.state.max_steps:
        log.warning("training stopped at step %d of %d; rerun with --resume to finish",
                    trainer.state.global_step, trainer.state.max_steps)
        return out
    if not trainer.is_world_process_zero():  # DDP: rank 0 writes the model and the meta
        return out
    _save_final(model, config, out)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    write_json(out / "loss_log.json", [h for h in trainer.state.log_history if "loss" in h])
    _write_card(out, config, dataset, data_stats, trainer, loss, losses, t_train)
    write_meta(out / META_NAME, config, base_model_fingerprint=model_fingerprint(resolve_model(config.model)),
               model_fingerprint=model_fingerprint(out),  # what a teacher or encoder of this model records
               data=data_stats, steps=trainer.state.global_step, examples=len(dataset),
               resumed_from=Path(resume_from).name if resume_from else None,
               timings={"load_s": round(t_load, 2), "train_s": round(t_train, 2),
                        "s_per_step": round(t_train / max(1, result.global_step - _step_of(resume_from)), 4)},
               final_loss=losses[-1] if losses else None, mean_train_loss=result.training_loss,
               loss={"class": type(loss).__name__, **loss.get_config_dict()},
               positives_mask=getattr(loss, "mask_stats", None),
               distillation=getattr(loss, "distill_stats", None), **({"refresh": refresh} if refresh else {}))
    log.info("wrote %s (%d steps, %.1fs)", out, trainer.state.global_step, t_train)
    return out


def _write_card(out: Path, config: TrainConfig, dataset, data_stats, trainer, loss, losses, t_train) -> None:
    """README.md: sentence-transformers' card + how the negatives were mined (``training.card``)."""
    from hardneg.training.card import write_card

    run = {"steps": trainer.state.global_step, "examples": len(dataset), "loss": type(loss).__name__,
           "final_loss": losses[-1] if losses else None, "train_s": round(t_train, 1)}
    try:
        write_card(out, config, run, used=data_stats)
    except Exception as e:  # noqa: BLE001 - the trained model is saved; a card problem must not unfinish the run
        log.warning("model card: could not add hardneg's section to %s/README.md (%s: %s); the model is fine",
                    out, type(e).__name__, e)


def _step_of(checkpoint: str | None) -> int:
    """'.../checkpoint-120' -> 120 (0 for a fresh run)."""
    return int(Path(checkpoint).name.rsplit("-", 1)[-1]) if checkpoint else 0


def _save_final(model: Any, config: TrainConfig, out: Path) -> None:
    """Save into a hidden sibling folder, then move the files into ``out`` (no half-written model)."""
    lora = has_lora(model)
    if lora and config.lora_merge:
        merge_lora(model)
    tmp = out / ".final.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    restore_inference_lengths(model, config.query_max_length, config.passage_max_length)
    model.save(str(tmp))
    if lora and not config.lora_merge:
        save_adapter_only(model, str(tmp), resolve_model(config.model))
    for item in tmp.iterdir():
        dest = out / item.name
        if dest.is_dir():
            shutil.rmtree(dest)
        os.replace(item, dest)
    tmp.rmdir()


def _trainer_class(model: Any) -> type:
    """sentence-transformers' trainer; with LoRA, resuming loads the checkpoint's weights (LoRA
    included) straight into the live model instead of rebuilding a model from the checkpoint."""
    from sentence_transformers import SentenceTransformerTrainer

    if not has_lora(model):
        return SentenceTransformerTrainer

    class LoraTrainer(SentenceTransformerTrainer):
        def _load_from_checkpoint(self, checkpoint_path, model=None):
            from safetensors.torch import load_file

            auto = self.model[0].auto_model
            missing, unexpected = auto.load_state_dict(load_file(str(Path(checkpoint_path) / "model.safetensors")),
                                                       strict=False)
            if unexpected or any("lora_" in m for m in missing):
                raise HardnegError(f"checkpoint {checkpoint_path} does not match the LoRA model "
                                   "(different --lora-* settings?): start a new --output")

    return LoraTrainer


def is_finished(output: str | Path) -> bool:
    """True when ``output`` holds a completed run (its meta file is written last)."""
    return (Path(output) / f"{META_NAME}.meta.json").is_file()
