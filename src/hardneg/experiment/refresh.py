"""Re-mining with the student as it learns (ANCE / Conan-embedding style): ``train_with_refresh``.

Training runs in rounds over ONE step budget and ONE LR schedule: the budget is what the config's
epochs / max_steps give on the original negatives, fixed when round 0 starts. Every ``refresh_every``
optimizer steps (a fraction < 1: of an epoch) the trainer stops at that boundary and saves a
checkpoint; the corpus and queries are re-encoded with the checkpoint (``encode_cached``, keyed by its
weights fingerprint, so nothing is reused across checkpoints), the negatives are re-mined with the
original file's own ``MineConfig`` (method, selection, judge, num_negatives, seed; the original
teachers vote in the judge, if one ran) and training resumes from the checkpoint (weights,
optimizer, scheduler, step count, RNG) on the new file through the trainer's ``resume`` path. The
data order stays seeded: the sampler shuffles with seed + epoch, and a resumed epoch skips the
batches already trained (counted on the new file's batching, which may differ from the old one's
when the no-duplicates rule meets other negatives).

Files, under ``OUTPUT/refresh/``::

    plan.json                  every, every_steps, total_steps, steps_per_epoch, boundaries
    round-K.neg.jsonl (+meta)  the negatives of round K (steps after boundary K); the meta's
                               "refresh" record: step, checkpoint, student fingerprint, seconds,
                               changed (vs round K-1), fn (held-out positives among the negatives)

Resume: a round is done when its file is committed (data + matching meta). A rerun with
``resume`` continues from the last checkpoint, re-mining first when that checkpoint is a boundary
whose round file is not committed. One process only (no DDP); one data source.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from hardneg.core.errors import HardnegError
from hardneg.core.files import read_json, write_json
from hardneg.core.provenance import is_committed, read_meta
from hardneg.training.config import CHECKPOINTS, Source, TrainConfig

log = logging.getLogger(__name__)

REFRESH = "refresh"  # OUTPUT/refresh/
PLAN = "plan.json"


def round_path(output: str | Path, k: int) -> Path:
    """``OUTPUT/refresh/round-K.neg.jsonl``: the negatives trained on after the K-th refresh."""
    return Path(output) / REFRESH / f"round-{k}.neg.jsonl"


def make_plan(every: float, total_steps: int, steps_per_epoch: int) -> dict:
    """The refresh boundaries (steps after which the student re-mines) within ``total_steps``.

    ``every`` >= 1 is a number of steps; 0 < ``every`` < 1 a fraction of an epoch (at least 1 step).

    >>> make_plan(2, 6, 2)["boundaries"], make_plan(0.5, 8, 4)["boundaries"], make_plan(10, 6, 2)["boundaries"]
    ([2, 4], [2, 4, 6], [])
    """
    if every <= 0:
        raise HardnegError(f"refresh_every must be > 0, got {every}")
    steps = int(every) if every >= 1 else max(1, round(every * steps_per_epoch))
    return {"every": every, "every_steps": steps, "total_steps": int(total_steps),
            "steps_per_epoch": int(steps_per_epoch), "boundaries": list(range(steps, int(total_steps), steps))}


def changed_negatives(before, after) -> dict:
    """How much a refresh changed the negatives, rows matched by (qid, pos_id).

    ``changed``: fraction of (row, slot) pairs whose id differs (a slot present on one side only
    counts as changed; so do all slots of a row present on one side only); ``new``: fraction of the
    new negatives that were not among the row's previous ones (order ignored).

    >>> from types import SimpleNamespace as R
    >>> old = [R(qid="q", pos_id="p", neg_ids=["a", "b"]), R(qid="r", pos_id="s", neg_ids=["c", "d"])]
    >>> new = [R(qid="q", pos_id="p", neg_ids=["b", "e"]), R(qid="r", pos_id="s", neg_ids=["c", "d"])]
    >>> changed_negatives(old, new)
    {'slots': 4, 'changed_slots': 2, 'changed': 0.5, 'negatives': 4, 'new_negatives': 1, 'new': 0.25}
    """
    prev = {(r.qid, r.pos_id): list(r.neg_ids) for r in before}
    slots = changed = n_new = n_neg = 0
    seen = set()
    for r in after:
        key = (r.qid, r.pos_id)
        seen.add(key)
        old, ids = prev.get(key, []), list(r.neg_ids)
        width = max(len(old), len(ids))
        slots += width
        changed += sum(j >= len(old) or j >= len(ids) or old[j] != ids[j] for j in range(width))
        n_neg += len(ids)
        n_new += len(set(ids) - set(old))
    for key, old in prev.items():
        if key not in seen:
            slots += len(old)
            changed += len(old)
    return {"slots": slots, "changed_slots": changed, "changed": changed / slots if slots else 0.0,
            "negatives": n_neg, "new_negatives": n_new, "new": n_new / n_neg if n_neg else 0.0}


def held_out_positives(data) -> dict[str, dict[str, int]]:
    """With ``anchor_only`` mining: each query's judgements other than its anchor (first positive),
    for the queries that have a held-out positive (grade > 0); what the FN rate is measured on."""
    out = {}
    for q in data.query_ids():
        anchor = data.relevant(q)[0]
        rest = {d: g for d, g in data.qrels[q].items() if d != anchor}
        if any(g > 0 for g in rest.values()):
            out[q] = rest
    return out


def fn_rate(rows, hidden: dict | None) -> dict | None:
    """``analysis.negatives.false_negative_rate`` over the queries with held-out positives (None: none)."""
    if not hidden:
        return None
    from hardneg.analysis.negatives import false_negative_rate

    f = false_negative_rate(rows, hidden)
    return {**f, "rate": None if math.isnan(f["rate"]) else f["rate"]}


@dataclass
class Remine:
    """How a refresh re-mines: the data (restricted to the original file's queries), the original
    ``MineConfig``, the student's teacher settings, the voters of the judge (the original teachers and
    judge teachers, when a judge ran; their own ``voter_settings``) and the held-out judgements for
    the FN rate (None: not measurable). The ablation builds one directly (sparse labels)."""

    data: object
    config: object                      # mining.config.MineConfig
    settings: object                    # mining.teachers.load.TeacherSettings of the student
    voters: tuple[str, ...] = ()
    voter_settings: object = None
    hidden: dict | None = None


def remine_from_negatives(source: Source) -> Remine:
    """The ``Remine`` that repeats how ``source.negatives`` was mined (its meta), on ``source``'s data."""
    from hardneg.data.load import load_data
    from hardneg.data.negatives import read_negatives
    from hardneg.mining.config import MineConfig
    from hardneg.mining.teachers.load import TeacherSettings

    meta = read_meta(source.negatives) or {}
    cfg = meta.get("config")
    if not isinstance(cfg, dict) or "method" not in cfg or "teachers" not in meta:
        raise HardnegError(f"{source.negatives}: --refresh-every re-mines with the file's own mining settings, but its "
                           "meta file has none (not written by 'hardneg mine'?): mine it with 'hardneg mine'")
    config = MineConfig(**_known(MineConfig, cfg))
    settings = TeacherSettings(**_known(TeacherSettings, meta.get("teacher_settings") or {}))
    teachers = meta.get("teacher_specs") or [t["name"] for t in meta["teachers"]]
    voters = (*teachers, *(meta.get("judge_teachers") or ())) if config.judge != "none" else ()
    rows = read_negatives(source.negatives)
    data = load_data(source.data, source.split)
    wanted = {r.qid for r in rows}
    data = dataclasses.replace(data, qrels={q: g for q, g in data.qrels.items() if q in wanted})
    student = dataclasses.replace(settings, backend="torch", query_prompt="", passage_prompt="", max_length=None,
                                  rescore_with=None)  # the student's own saved prompts and lengths apply
    return Remine(data, config, student, tuple(voters), settings,
                  held_out_positives(data) if config.anchor_only else None)


def _known(cls, values: dict) -> dict:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in values.items() if k in names}


def mine_round(remine: Remine, checkpoint: Path, k: int, previous: str | Path, output: Path) -> dict:
    """Re-mine with the student ``checkpoint`` into ``output`` (+ meta, the round's commit); returns
    the round's record (also in the meta's ``"refresh"``)."""
    from hardneg.core.fingerprint import model_fingerprint
    from hardneg.data.negatives import read_negatives, write_negatives
    from hardneg.mining.mine import mine
    from hardneg.mining.teachers.judge import load_judge
    from hardneg.mining.teachers.load import load_teacher

    t0 = time.perf_counter()
    step = int(checkpoint.name.rsplit("-", 1)[-1])
    config = remine.config
    student = load_teacher(str(checkpoint), remine.settings, seed=config.seed)
    student.name = f"student-step{step}"  # not the path: the JSONL stays free of run-dependent text
    voters = [load_teacher(v, remine.voter_settings, seed=config.seed) for v in remine.voters]
    judge = load_judge(config, 1 + len(voters), batch_size=remine.settings.batch_size)
    result = mine(remine.data, [student], config, judge=judge, voters=voters)
    record = {"round": k, "step": step, "checkpoint": checkpoint.name,
              "student_fingerprint": model_fingerprint(checkpoint, remine.settings.cache_dir),
              "seconds": {"encode_search": result.timings["candidates_s"], "mine": result.timings["mining_s"],
                          "total": round(time.perf_counter() - t0, 3)},
              "previous": Path(previous).name, "rows": len(result.rows),
              "changed": changed_negatives(read_negatives(previous), result.rows),
              "fn": fn_rate(result.rows, remine.hidden)}
    write_negatives(output, result, config, refresh=record, teacher_specs=[student.name],
                    judge_teachers=list(remine.voters), teacher_settings=remine.settings)
    fn = record["fn"]
    log.info("refresh %d at step %d: encode+search %.1fs, mine %.1fs; %.1f%% of negative slots changed (%.1f%% new "
             "ids)%s", k, step, record["seconds"]["encode_search"], record["seconds"]["mine"],
             100 * record["changed"]["changed"], 100 * record["changed"]["new"],
             f"; FN rate {100 * fn['rate']:.1f}% over {fn['queries']} queries with held-out positives"
             if fn and fn["rate"] is not None else "")
    return record


def refresh_summary(output: Path, plan: dict | None, source: Source, remine: Remine | None) -> dict:
    """What the model meta records: the plan, the original file (and its FN rate) and each finished round."""
    rounds = []
    for k in range(1, len((plan or {}).get("boundaries", [])) + 1):
        path = round_path(output, k)
        if is_committed(path):
            rounds.append((read_meta(path) or {}).get("refresh"))
    original = {"negatives": str(source.negatives)}
    if remine is not None and remine.hidden:
        from hardneg.data.negatives import read_negatives

        original["fn"] = fn_rate(read_negatives(source.negatives), remine.hidden)
    return {"plan": plan, "original": original, "rounds": rounds}


def last_checkpoint(output: Path) -> tuple[Path | None, int]:
    """(latest ``checkpoint-N`` folder or None, N or 0)."""
    from hardneg.training.trainer import last_complete_checkpoint

    last = last_complete_checkpoint(output / CHECKPOINTS)  # a half-saved newest one is skipped (removed)
    return (Path(last), int(Path(last).name.rsplit("-", 1)[-1])) if last else (None, 0)


def boundary_stop(every: float, plan_path: Path):
    """A ``TrainerCallback`` that stops and saves at each refresh boundary. The plan is made in the
    first round (``total_steps`` = the trainer's max_steps, steps per epoch from its dataloader) and
    written to ``plan_path``; later rounds read it."""
    from transformers import TrainerCallback

    class BoundaryStop(TrainerCallback):
        plan: dict | None = None
        stopped_at: int | None = None

        def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
            self.plan = read_json(plan_path) if plan_path.is_file() else None
            if self.plan is None:
                per_epoch = max(1, math.ceil(len(train_dataloader) / args.gradient_accumulation_steps))
                self.plan = make_plan(every, state.max_steps, per_epoch)
                write_json(plan_path, self.plan)
                if not self.plan["boundaries"]:
                    log.warning("refresh_every %s >= the %d training steps: no refresh happens", every,
                                state.max_steps)

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step in self.plan["boundaries"]:
                control.should_training_stop = control.should_save = True
                self.stopped_at = state.global_step
            return control

    return BoundaryStop()


def train_with_refresh(config: TrainConfig, remine: Remine | None = None, *, callbacks: list | None = None) -> Path:
    """Train ``config`` re-mining every ``config.refresh_every`` steps; returns the output dir.

    ``remine`` (default: ``remine_from_negatives(config.sources[0])``) says how. ``callbacks``: extra
    ``TrainerCallback``s for every round (tests stop a run with one: a later call with
    ``resume=True`` continues it).
    """
    from hardneg.training.trainer import is_finished, train

    out = Path(config.output)
    if config.refresh_every <= 0:
        raise HardnegError("train_with_refresh needs refresh_every > 0 (else use hardneg.training.trainer.train)")
    if len(config.sources) != 1:
        raise HardnegError("--refresh-every re-mines one negatives file: train on one --data / --negatives pair")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise HardnegError("--refresh-every runs in one process (it mines between rounds): drop torchrun/accelerate")
    source, plan_path = config.sources[0], out / REFRESH / PLAN
    plan = read_json(plan_path) if plan_path.is_file() else None
    if plan is not None and plan.get("every") != config.refresh_every:
        raise HardnegError(f"{out} was started with --refresh-every {plan.get('every'):g}, not "
                           f"{config.refresh_every:g}: rerun with that value or choose a new --output")
    if is_finished(out):  # returns it (resume) or refuses, as plain training does
        return train(config, refresh=refresh_summary(out, plan, source, None))
    checkpoint, step = last_checkpoint(out)
    if checkpoint is not None and not config.resume:
        raise HardnegError(f"{out} already has checkpoints ({checkpoint.name}): pass --resume to continue, or "
                           "choose a new --output")
    remine = remine or remine_from_negatives(source)
    while True:
        k = sum(b <= step for b in plan["boundaries"]) if plan and checkpoint else 0
        negatives = round_path(out, k) if k else Path(source.negatives)
        if k and not is_committed(negatives):
            if step != plan["boundaries"][k - 1]:
                raise HardnegError(f"{negatives} is missing or incomplete, but training is already at step {step}, "
                                   f"past its refresh at step {plan['boundaries'][k - 1]}: choose a new --output")
            mine_round(remine, checkpoint, k, round_path(out, k - 1) if k > 1 else source.negatives, negatives)
        stop = boundary_stop(config.refresh_every, plan_path)
        cfg = dataclasses.replace(config, sources=(dataclasses.replace(source, negatives=str(negatives)),),
                                  resume=config.resume or checkpoint is not None,
                                  max_steps=plan["total_steps"] if plan else config.max_steps)
        quiet = _QuietStop(stop)
        logging.getLogger("hardneg.training.trainer").addFilter(quiet)
        try:
            train(cfg, callbacks=[stop, *(callbacks or [])], refresh=refresh_summary(out, plan, source, remine))
        finally:
            logging.getLogger("hardneg.training.trainer").removeFilter(quiet)
        if is_finished(out) or stop.stopped_at is None:
            return out  # finished, or stopped by a caller's callback (a later resume continues)
        plan = stop.plan
        checkpoint, step = last_checkpoint(out)


class _QuietStop(logging.Filter):
    """Drops the trainer's "training stopped at step ..., rerun with --resume" warning when the stop
    was a refresh boundary (the loop goes on by itself)."""

    def __init__(self, stop):
        super().__init__()
        self.stop = stop

    def filter(self, record: logging.LogRecord) -> bool:
        return self.stop.stopped_at is None or not record.getMessage().startswith("training stopped at step")
