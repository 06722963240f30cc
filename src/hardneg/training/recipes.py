"""Multi-stage training recipes in TOML (stdlib ``tomllib``); stage k+1 starts from stage k's output.

Layout (see ``nv-retriever-v1.toml`` and ``cpu-small.toml`` next to this file)::

    model = "minilm"                  # base model of stage 1
    output = "runs/cpu-small"         # stage k writes OUTPUT/stage<k>-<name>
    [defaults]                        # any TrainConfig field, for every stage
    query_max_length = 64
    [[stage]]
    name = "retrieval"
    num_negatives = 1                 # + batch_size, grad_accum, lr, warmup, epochs, in_batch_negatives ...
    sources = [{data = "scifact", negatives = "runs/scifact-percpos95.jsonl", max_examples = 400}]

Relative paths are taken from the current directory, like command-line paths. ``--config NAME``
also accepts the name of a packaged recipe (``cpu-small``, ``nv-retriever-v1``).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from hardneg.core import recipes as core_recipes
from hardneg.core.errors import DataError

log = logging.getLogger(__name__)

_NOT_STAGE_KEYS = {"model", "output", "sources", "resume"}


def packaged() -> list[str]:
    """The packaged training recipes (``hardneg/recipes``, read by ``hardneg.core.recipes``)."""
    return core_recipes.packaged("train")


def load_recipe(spec: str | Path) -> tuple[dict[str, Any], list]:
    """Parse and validate a recipe -> (top-level table, [TrainConfig per stage])."""
    from hardneg.training.config import Source, TrainConfig

    path, doc, _ = core_recipes.load_recipe_toml(spec, "train")
    for key in ("model", "output", "stage"):
        if key not in doc:
            raise DataError(path, None, f"missing top-level '{key}'", "see the packaged cpu-small.toml")
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - _NOT_STAGE_KEYS
    defaults = doc.get("defaults", {})
    _check_keys(path, "[defaults]", defaults, fields | {"sources"})
    configs = []
    model = doc["model"]
    for k, stage in enumerate(doc["stage"], 1):
        merged = {**defaults, **stage}
        name = str(merged.pop("name", f"{k}"))
        _check_keys(path, f"[[stage]] {k} ({name})", merged, fields | {"sources"})
        raw_sources = merged.pop("sources", None)
        if not raw_sources:
            raise DataError(path, None, f"stage {k} ({name}) has no 'sources'",
                            'add sources = [{data = "...", negatives = "..."}]')
        sources = tuple(_source(path, k, s, Source) for s in raw_sources)
        out = str(Path(doc["output"]) / f"stage{k}-{name}")
        if "lora_targets" in merged:
            merged["lora_targets"] = tuple(merged["lora_targets"])
        configs.append(TrainConfig(model=model, sources=sources, output=out, **merged))
        model = out  # the next stage starts from this one
    return doc, configs


def _check_keys(path: Path, where: str, table: dict, allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed - {"name"})
    if unknown:
        raise DataError(path, None, f"{where}: unknown key(s) {unknown}", f"allowed: {sorted(allowed)}")


def _source(path: Path, k: int, s: Any, Source: type) -> Any:
    if not isinstance(s, dict) or "data" not in s or "negatives" not in s:
        raise DataError(path, None, f"stage {k}: each source needs 'data' and 'negatives', got {s!r}")
    extra = sorted(set(s) - {"data", "negatives", "split", "max_examples"})
    if extra:
        raise DataError(path, None, f"stage {k}: unknown source key(s) {extra}")
    return Source(str(s["data"]), str(s["negatives"]), str(s.get("split", "train")), s.get("max_examples"))


def run_recipe(spec: str | Path, resume: bool = False) -> Path:
    """Train every stage in order; finished stages are skipped with ``resume``. Returns the last output."""
    from hardneg.core.provenance import write_meta
    from hardneg.training.trainer import is_finished, train

    doc, configs = load_recipe(spec)
    out = None
    for k, cfg in enumerate(configs, 1):
        if resume and is_finished(cfg.output):
            log.info("stage %d: %s already finished, skipping", k, cfg.output)
            out = Path(cfg.output)
            continue
        log.info("stage %d/%d: %s -> %s", k, len(configs), cfg.model, cfg.output)
        out = train(dataclasses.replace(cfg, resume=resume))
        if not is_finished(out):
            return out  # interrupted; rerun with --resume
    write_meta(Path(doc["output"]) / "recipe", doc, recipe=core_recipes.find_recipe(spec, "train")[0],
               stages=[c.output for c in configs])
    return out
