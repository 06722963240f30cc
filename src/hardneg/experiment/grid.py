"""The ablation grid: teachers × mining methods × seeds, plus reference rows, each cell
mine -> train -> evaluate, resumable, ending in ``results.json`` and ``report.md`` with plots.

Cells are planned from an ``AblationConfig``; a cell's id is a hash of everything that decides its
result (data, student, teacher, mining and training settings, seed), so a finished cell
(``DIR/cells/<id>.json``, written atomically) is never recomputed and a killed run continues.
Changing a setting changes the ids of exactly the cells it affects.

Reference rows: ``base`` (the student untrained), ``random`` (random negatives, the paper's
random teacher) and ``inbatch`` (no mined negatives: in-batch negatives only).
``fn_probe`` cells (mining only) measure the false-negative rate: they mine on a dataset with many
judged positives telling the miner only each query's best-graded positive (``MineConfig.anchor_only``),
and count how many mined negatives are among the other, hidden, judged-relevant passages.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from hardneg.core.files import read_json, write_json
from hardneg.core.provenance import write_meta
from hardneg.experiment.config import (VARIANTS, AblationConfig, method_settings, row_parts, select_variant,
                                       split_variant, train_variant)

log = logging.getLogger(__name__)

SCORE_SAMPLE = 4000  # teacher scores kept per cell for the histograms


@dataclass(frozen=True)
class Cell:
    """One unit of work. ``spec`` holds every setting that decides the result; ``id`` hashes it."""

    kind: str  # base | random | inbatch | peer | method | fn_probe
    row: str  # method spec ("percpos:0.95") or the reference name
    teacher: str | None
    seed: int
    spec: dict = field(hash=False, compare=False)

    @property
    def id(self) -> str:
        blob = json.dumps({"kind": self.kind, "row": self.row, "teacher": self.teacher, "seed": self.seed,
                           **self.spec}, sort_keys=True, default=str)
        return f"{self.kind}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def plan_cells(cfg: AblationConfig, data_fp: str = "", probe_fp: str = "") -> list[Cell]:
    """Every cell of the grid, in run order: base, references, methods (seed-major), probes.

    ``data_fp`` / ``probe_fp`` (data fingerprints) enter the ids so new data never reuses old cells.
    """
    mine = {"num_negatives": cfg.num_negatives, "selection": cfg.selection, "depth": cfg.depth,
            "teacher_backend": cfg.teacher_backend}
    if cfg.teacher_max_length is not None:  # only when set: the ids of before stay
        mine["teacher_max_length"] = cfg.teacher_max_length
    cells = [] if cfg.probe_only else _trained_cells(cfg, data_fp, mine)
    if cfg.fn_probe_data:
        probe = {"data": cfg.fn_probe_data, "data_fp": probe_fp, "split": cfg.fn_probe_split, "mine": mine}
        cells += [Cell("fn_probe", m, t, 0, {**probe, **_judge_spec(cfg, m)}) for t in cfg.teachers for m in cfg.methods]
    return cells


def _trained_cells(cfg: AblationConfig, data_fp: str, mine: dict) -> list[Cell]:
    common = {"data": cfg.data, "data_fp": data_fp, "train_split": cfg.train_split, "eval_split": cfg.eval_split,
              "student": cfg.student, "eval": {"backend": cfg.eval_backend, "max_length": cfg.eval_max_length}}
    train = {**common, "train": cfg.train.spec(), "max_train_queries": cfg.max_train_queries,
             **({"labels": cfg.labels} if cfg.labels != "full" else {})}  # full labels: the ids of before
    cells = [Cell("base", "base", None, 0, common)] if "base" in cfg.references else []
    for seed in cfg.seeds:
        if "random" in cfg.references:
            cells.append(Cell("random", "naive", "random", seed, {**train, "mine": mine}))
        if "inbatch" in cfg.references:
            cells.append(Cell("inbatch", "inbatch", None, seed, train))
        if "peer" in cfg.references:
            peer = {"relative_margin": cfg.peer_relative_margin, "num_negatives": cfg.num_negatives}
            if cfg.teacher_max_length is not None:  # the same teacher as ours: same truncation
                peer["max_length"] = cfg.teacher_max_length
            cells += [Cell("peer", f"st-mine relative_margin={cfg.peer_relative_margin:g}", t, seed,
                           {**train, "peer": peer}) for t in cfg.teachers if peer_can_mine(t)]
    # seed-major: a run stopped part-way has every row for its first seeds, not one row for all seeds
    cells += [Cell("method", m, t, seed, {**train, **_variant_spec(cfg, m, mine), **_judge_spec(cfg, m)})
              for seed in cfg.seeds for t in cfg.teachers for m in cfg.methods]
    return cells


def peer_can_mine(teacher: str) -> bool:
    """sentence-transformers' ``mine_hard_negatives`` takes one embedding model: no BM25, random or fused teacher.

    >>> [peer_can_mine(t) for t in ("minilm", "bm25", "fuse:minilm+bm25")]
    [True, False, False]
    """
    from hardneg.mining.teachers.fused import FUSE_PREFIX
    from hardneg.mining.teachers.load import NON_DENSE

    return teacher not in NON_DENSE and not teacher.startswith(FUSE_PREFIX)


def _variant_spec(cfg: AblationConfig, spec: str, mine: dict) -> dict:
    """The mining settings of a row (its ``+simans`` selection) and, only when it has training variants,
    ``train_extra`` (TrainConfig settings): a row without variants keeps the ids of before."""
    select = select_variant(spec)
    mine = {**mine, "selection": select} if select else mine
    if "deepen" in row_parts(spec)[1]:
        mine = {**mine, "on_shortfall": "deepen"}
    out: dict[str, Any] = {"mine": mine}
    extra = train_variant(spec, cfg.refresh_every)
    if extra:
        out["train_extra"] = extra
    return out


def _judge_spec(cfg: AblationConfig, spec: str) -> dict:
    """The judge settings of a "+judge" / "+relabel" row (nothing for a plain method: same ids as before)."""
    variant = split_variant(spec)[1]
    if variant is None:
        return {}
    return {"judge": {"judge": "agreement", "false_negatives": VARIANTS[variant], "voters": list(cfg.judge_voters),
                      "judge_min_votes": cfg.judge_min_votes, "judge_frac": cfg.judge_frac}}


def load_finished(out_dir: Path) -> dict[str, dict]:
    """``{cell id: result}`` for every readable ``cells/*.json`` (a torn file cannot exist: atomic)."""
    done = {}
    for p in sorted((out_dir / "cells").glob("*.json")):
        try:
            done[p.stem] = read_json(p)
        except (OSError, json.JSONDecodeError) as e:
            log.warning("ignoring unreadable cell file %s (%s); it will be recomputed", p, e)
    return done


def run_ablation(cfg: AblationConfig, out_dir: str | Path, *, stages=None, progress: bool = True,
                 plots: bool = True) -> dict:
    """Run (or resume) the grid in ``out_dir``; returns the results dict also saved as results.json."""
    from tqdm.auto import tqdm

    from hardneg.experiment.stages import Stages
    from hardneg.report.markdown import write_report

    out_dir = Path(out_dir)
    stages = stages or Stages(cfg, out_dir, progress=progress)
    cells = plan_cells(cfg, stages.data_fingerprint(), stages.probe_fingerprint())
    done = load_finished(out_dir)
    todo = [c for c in cells if c.id not in done]
    log.info("ablation: %d cells, %d already finished, %d to run", len(cells), len(cells) - len(todo), len(todo))
    started = time.time()
    with tqdm(total=len(cells), initial=len(cells) - len(todo), desc="ablation cells", position=0,
              disable=not progress, unit="cell") as bar:
        for cell in todo:
            bar.set_postfix_str(f"{cell.kind} {cell.row} {cell.teacher or ''} seed {cell.seed}".strip())
            result = run_cell(cell, stages)
            write_json(out_dir / "cells" / f"{cell.id}.json", result)
            done[cell.id] = result
            bar.update(1)
    results = {"config": cfg.to_dict(), "cells": [done[c.id] for c in cells],
               "seconds_this_run": round(time.time() - started, 1)}
    write_json(out_dir / "results.json", results)
    write_meta(out_dir / "results.json", cfg, cells=len(cells), computed_this_run=len(todo))
    notes = [*cfg.describe(), f"- this invocation computed {len(todo)} of {len(cells)} cells in "
             f"{results['seconds_this_run'] / 60:.1f} min (finished cells are reused from {out_dir / 'cells'})"]
    title = f"hardneg false-negative probe: {cfg.fn_probe_data}" if cfg.probe_only else f"hardneg ablation: {cfg.data}"
    report, _, pngs = write_report(results["cells"], out_dir, title=title,
                                   notes=notes, plots=plots)
    results["report"], results["plots"] = str(report), [str(p) for p in pngs]
    return results


def run_cell(cell: Cell, stages) -> dict[str, Any]:
    """mine -> train -> evaluate (as the cell's kind needs) and return its JSON-able record."""
    rec: dict[str, Any] = {"id": cell.id, "kind": cell.kind, "row": cell.row, "teacher": cell.teacher,
                           "seed": cell.seed, "spec": cell.spec, "seconds": {}}
    timed = _timer(rec["seconds"])
    if cell.kind == "fn_probe":
        method, judge = method_settings(split_variant(cell.row)[0]), cell.spec.get("judge")
        rows, stats, judged = timed("mine", lambda: stages.probe(cell.teacher, method, judge=judge))
        from hardneg.analysis.negatives import false_negative_rate

        if judge is not None:
            rec["judge"] = stats.get("judge")
        rec["data"] = cell.spec["data"]
        rec["fn"] = false_negative_rate(rows, judged)
        rec["mining"] = mining_record(rows, stats, stages.cfg.num_negatives)
        return rec
    model = stages.cfg.student
    if cell.kind != "base":
        negatives = None
        if cell.kind in ("method", "random", "peer"):
            if cell.kind == "peer":
                negatives, rows, stats = timed("mine", lambda: stages.peer_mine(cell.teacher, cell.spec["peer"]))
            else:
                method = method_settings(split_variant(cell.row)[0])
                judge = cell.spec.get("judge")
                select = cell.spec["mine"]["selection"] if select_variant(cell.row) else None
                deepen = {"on_shortfall": "deepen"} if cell.spec["mine"].get("on_shortfall") == "deepen" else {}
                negatives, rows, stats = timed("mine", lambda: stages.mine(cell.teacher, method, cell.seed, cell.id,
                                                                           judge=judge, select=select, **deepen))
                if judge is not None:
                    rec["judge"] = stats.get("judge")
            rec["mining"] = mining_record(rows, stats, stages.cfg.num_negatives)
            if stages.cfg.labels == "sparse":  # the held-out positives judge the mined negatives
                from hardneg.analysis.negatives import false_negative_rate

                rec["fn"] = false_negative_rate(rows, stages.hidden)
        extra = cell.spec.get("train_extra") or {}
        model = timed("train", lambda: stages.train(negatives, cell.seed, cell.id, mask=cell.kind != "peer", **extra))
        rec["train"] = stages.train_info(model)
    ev = timed("evaluate", lambda: stages.evaluate(model))
    rec["metrics"], rec["per_query"] = ev.metrics, ev.per_query
    if cell.kind != "base" and not stages.cfg.keep_models:
        shutil.rmtree(model, ignore_errors=True)
    return rec


def _timer(seconds: dict) -> Callable:
    def timed(name: str, fn: Callable):
        t = time.perf_counter()
        out = fn()
        seconds[name] = round(time.perf_counter() - t, 2)
        return out
    return timed


def mining_record(rows: list[dict], stats: dict, n: int, sample: int = SCORE_SAMPLE) -> dict:
    """Summary (rows, mean negatives, rows short of ``n``), the miner's stats and a score sample.

    >>> r = mining_record([{"pos_score": .9, "neg_scores": [.5, .4]}], {}, 4)
    >>> r["summary"], r["pos_scores"], r["neg_scores"]
    ({'rows': 1, 'mean_negatives': 2.0, 'short_rows': 1}, [0.9], [0.5, 0.4])
    """
    import numpy as np

    negs = [len(r["neg_scores"]) for r in rows]
    pos = [float(r["pos_score"]) for r in rows]
    neg = [float(s) for r in rows for s in r["neg_scores"]]
    rng = np.random.default_rng(0)
    if len(neg) > sample:
        neg = [neg[i] for i in sorted(rng.choice(len(neg), sample, replace=False))]
    if len(pos) > sample:
        pos = [pos[i] for i in sorted(rng.choice(len(pos), sample, replace=False))]
    summary = {"rows": len(rows), "mean_negatives": float(np.mean(negs)) if negs else 0.0,
               "short_rows": sum(k < n for k in negs)}
    return {"summary": summary, "stats": stats, "pos_scores": pos, "neg_scores": neg}
