"""The model card of a trained model: sentence-transformers' README.md plus how the negatives were mined.

``model.save`` writes sentence-transformers' own card (``README.md``: model details, usage, training
hyper-parameters and logs its trainer collected). ``write_card`` adds one section to it, between
``<!-- hardneg:begin -->`` and ``<!-- hardneg:end -->`` (before ST's "## Training Details"), built by
the pure ``render_card`` from:

* each source's negatives meta (``core.provenance.read_meta``): teachers and their fingerprints, the
  method and its threshold, the selection, the judge (what it did with false negatives, its held-out
  precision / recall when it was measured), the mining counts;
* the ``TrainConfig`` (every setting) and the run (steps, examples, loss);
* evaluation results: none at training time. The card says so in a marked block that
  ``hardneg evaluate --card`` fills (``set_evaluation``, one row per data + split; rerunning replaces
  the row). Nothing is guessed: a number absent from the metas is written "not recorded".

``push_to_hub(folder, repo_id)`` uploads the folder with ``huggingface_hub`` (``create_repo`` +
``upload_folder``), leaving out ``checkpoints/`` and lock files.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

log = logging.getLogger(__name__)

BEGIN, END = "<!-- hardneg:begin -->", "<!-- hardneg:end -->"
EVAL_BEGIN, EVAL_END = "<!-- hardneg:evaluation:begin -->", "<!-- hardneg:evaluation:end -->"
_EVAL_DATA = re.compile(r"<!-- hardneg:evaluation-data (.*?) -->", re.S)
NOT_EVALUATED = ("*Not evaluated yet: no evaluation result is recorded for this model.* Fill this table with "
                 "`hardneg evaluate --model THIS_FOLDER --data DATA --split test --card`.")
EVAL_COLUMNS = ("ndcg@10", "mrr@10", "recall@100")  # the card's columns (all metrics stay in the data comment)
HUB_IGNORE = ["checkpoints/*", "*.lock", ".final.partial/*", ".*.tmp"]

# method -> (its threshold setting, how the rule reads) as ``hardneg mine --help`` states them
_RULES = {"naive": (None, "no filter: the top non-positives"), "shifted": ("shift", "skip the top {} non-positives"),
          "abs": ("max_score", "keep s < {}"), "marginpos": ("margin", "keep s < p - {}"),
          "percpos": ("perc", "keep s < p - |p|(1 - {})")}


def _fmt(v: Any) -> str:
    if v is None:
        return "not recorded"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _code(v: Any) -> str:
    return f"`{v}`"


def mining_rows(meta: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """(label, value) rows saying how one negatives file was mined, from its meta file (None: no meta).

    >>> mining_rows({"config": {"method": "abs", "max_score": 0.7, "select": "top", "num_negatives": 2,
    ...              "depth": 100}, "teachers": [{"name": "bm25", "fingerprint": "bm25s:k1=0.9"}]})[:3]
    [('teachers', '`bm25` (fingerprint `bm25s:k1=0.9`)'), ('method', 'abs: keep s < 0.7'), ('selection', 'top, 2 per row, from the top 100 candidates')]
    """
    if not meta:
        return [("mining", "not recorded: the negatives file has no meta file (it was not written by `hardneg mine`)")]
    cfg, stats = meta.get("config") or {}, meta.get("stats") or {}
    teachers = ", ".join(f"{_code(t.get('name'))} (fingerprint {_code(t.get('fingerprint'))})"
                         for t in meta.get("teachers") or []) or "not recorded"
    method = cfg.get("method")
    key, rule = _RULES.get(method, (None, ""))
    how = f"{method}: {rule.format(cfg.get(key)) if key else rule}" if method else "not recorded"
    if method and cfg.get("min_score") is not None:
        how += f", and s >= {cfg['min_score']}"
    if method in ("marginpos", "percpos"):
        how += f" (p = the query's positive score, {cfg.get('positive_score', 'min')} over its positives)"
    rows = [("teachers", teachers), ("method", how),
            ("selection", f"{cfg.get('select', 'not recorded')}, {_fmt(cfg.get('num_negatives'))} per row, "
                          f"from the top {_fmt(cfg.get('depth'))} candidates")]
    if len(meta.get("teachers") or []) > 1:
        rows.append(("ensemble", _fmt(cfg.get("ensemble"))))
    rows.append(("false-negative judge", _judge(cfg, stats.get("judge"), meta.get("judge_teachers"))))
    removed = stats.get("removed") or {}
    counts = (f"{_fmt(stats.get('queries'))} queries, {_fmt(stats.get('rows'))} rows, "
              f"{_fmt(stats.get('candidates_seen'))} candidates seen")
    if removed:
        counts += "; removed: " + ", ".join(f"{k} {v}" for k, v in removed.items())
    short = stats.get("shortfall") or {}
    if short:
        counts += (f"; rows short of negatives: {_fmt(short.get('rows_short_initially'))} "
                   f"({short.get('handling', '?')}: {_fmt(short.get('dropped'))} dropped)")
    rows.append(("counts", counts))
    rows.append(("seed", _fmt(meta.get("seed", cfg.get("seed")))))
    return rows


def _judge(cfg: Mapping, judge: Mapping | None, voters: Sequence[str] | None) -> str:
    name = cfg.get("judge")
    if not name or name == "none":
        return "none (false negatives not measured)"
    j = judge or {}
    text = f"{name}"
    if name == "agreement":
        text += f" (min votes {cfg.get('judge_min_votes')}, frac {cfg.get('judge_frac')})"
    elif cfg.get("judge_model"):
        text += f" ({_code(cfg['judge_model'])})"
    if voters:
        text += f", voters {', '.join(map(_code, voters))}"
    text += (f"; flagged {_fmt(j.get('flagged'))} probable false negatives, action {j.get('action', cfg.get('false_negatives'))}"
             f" (removed {_fmt(j.get('removed'))}, relabelled {_fmt(j.get('relabeled'))}, "
             f"queries dropped {_fmt(j.get('queries_dropped'))})")
    held = j.get("held_out")
    if isinstance(held, Mapping) and held:
        text += (f"; against held-out positives: precision {_fmt(held.get('precision'))}, "
                 f"recall {_fmt(held.get('recall'))} ({_fmt(held.get('flagged_held_out'))} of "
                 f"{_fmt(held.get('held_out_candidates'))} held-out positives among the candidates flagged)")
    else:
        text += "; false-negative rate not measured (no held-out positives)"
    return text


def _table(rows: Sequence[tuple[str, str]]) -> str:
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|")  # a literal | inside a markdown table cell

    return "\n".join(["| | |", "|---|---|", *(f"| {k} | {cell(v)} |" for k, v in rows)])


def evaluation_block(evaluations: Sequence[Mapping[str, Any]] = ()) -> str:
    """The marked evaluation block: a table of ``evaluations`` (each ``{"data", "split", "n_queries",
    "metrics": {name: value}}``), or the not-evaluated note; the entries ride along as JSON."""
    if not evaluations:
        body = NOT_EVALUATED
    else:
        head = ["data", "split", "queries", *EVAL_COLUMNS]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for e in evaluations:
            m = e.get("metrics") or {}
            lines.append("| " + " | ".join([_code(e.get("data")), str(e.get("split")), _fmt(e.get("n_queries")),
                                            *(f"{m[c]:.4f}" if c in m else "-" for c in EVAL_COLUMNS)]) + " |")
        lines.append("")
        lines.append("Measured with `hardneg evaluate` (exact search, MTEB's metric definitions).")
        body = "\n".join(lines)
    data = json.dumps(list(evaluations), sort_keys=True).replace("--", "- -")  # no "--" inside an HTML comment
    return f"{EVAL_BEGIN}\n{body}\n<!-- hardneg:evaluation-data {data} -->\n{EVAL_END}"


def render_section(sources: Sequence[Mapping[str, Any]], config: Mapping[str, Any],
                   run: Mapping[str, Any], evaluations: Sequence[Mapping[str, Any]] = ()) -> str:
    """The card's hardneg section (markers included).

    ``sources``: one ``{"data", "negatives", "split", "meta" (the negatives meta or None), "used"
    (the trainer's stats of that source or None)}`` per training source; ``config``: the ``TrainConfig``
    as JSON; ``run``: steps, examples, final_loss, loss (class name), train_s."""
    parts = [BEGIN, "## Hard negatives and training (hardneg)", "",
             f"Fine-tuned from {_code(config.get('model'))} with hardneg on mined hard negatives "
             f"({len(sources)} training source{'s' if len(sources) != 1 else ''}).", ""]
    for i, s in enumerate(sources, 1):
        used = s.get("used") or {}
        rows = [("data", f"{_code(s.get('data'))}, split {s.get('split', 'train')}"),
                ("negatives file", f"{_code(Path(str(s.get('negatives'))).name)}"
                                   + (f" (sha256 {_code(used['negatives_sha256'][:16])})" if used.get("negatives_sha256") else "")),
                *mining_rows(s.get("meta"))]
        if used:
            rows.append(("used in training", f"{_fmt(used.get('examples'))} examples from {_fmt(used.get('rows'))} rows "
                                             f"({_fmt(used.get('short_rows_dropped'))} short rows dropped, "
                                             f"{_fmt(used.get('relabeled_rows_added'))} relabelled rows added)"))
        parts += [f"### How the negatives were mined: source {i}", "", _table(rows), ""]
    settings = [(k, _code(json.dumps(v))) for k, v in config.items() if k not in ("sources", "output")]
    parts += ["### Training settings (`TrainConfig`)", "", _table(settings), ""]
    parts += ["### Training run", "", _table([(k, _fmt(v)) for k, v in run.items()]), ""]
    parts += ["### Evaluation (hardneg)", "", evaluation_block(evaluations), END]
    return "\n".join(parts)


def render_card(st_card: str, sources: Sequence[Mapping[str, Any]], config: Mapping[str, Any],
                run: Mapping[str, Any], evaluations: Sequence[Mapping[str, Any]] = ()) -> str:
    """sentence-transformers' card ``st_card`` with the hardneg section (``render_section``) put in:
    replacing an earlier one, else before "## Training Details", else at the end; and the tag
    ``hardneg`` added to the YAML front matter's ``tags`` list."""
    section = render_section(sources, config, run, evaluations)
    if BEGIN in st_card and END in st_card:
        head, rest = st_card.split(BEGIN, 1)
        return head + section + rest.split(END, 1)[1]
    card = _add_tag(st_card, "hardneg")
    at = card.find("\n## Training Details")
    if at < 0:
        return card.rstrip("\n") + "\n\n" + section + "\n"
    return card[:at + 1] + section + "\n\n" + card[at + 1:]


def _add_tag(card: str, tag: str) -> str:
    """Add ``- tag`` under the front matter's ``tags:`` (unchanged without front matter or when present)."""
    if not card.startswith("---\n"):
        return card
    end = card.find("\n---", 4)
    front = card[:end]
    m = re.search(r"^tags:\n", front, re.M)
    if end < 0 or not m or re.search(rf"^- {re.escape(tag)}$", front, re.M):
        return card
    return card[:m.end()] + f"- {tag}\n" + card[m.end():]


def card_evaluations(card: str) -> list[dict]:
    """The evaluation entries recorded in a card (``[]`` when none or no hardneg section)."""
    m = _EVAL_DATA.search(card)
    return json.loads(m.group(1).replace("- -", "--")) if m else []


def set_evaluation(card: str, entry: Mapping[str, Any]) -> str:
    """``card`` with ``entry`` in its evaluation table (replacing the entry of the same data + split).

    >>> card = "x\\n" + evaluation_block() + "\\ny"
    >>> new = set_evaluation(card, {"data": "scifact", "split": "test", "n_queries": 300, "metrics": {"ndcg@10": 0.65}})
    >>> [line for line in new.splitlines() if line.startswith("| `")]
    ['| `scifact` | test | 300 | 0.6500 | - | - |']
    """
    if EVAL_BEGIN not in card or EVAL_END not in card:
        from hardneg.core.errors import HardnegError

        raise HardnegError("the model card has no hardneg evaluation block (the model was not trained by "
                           "`hardneg train`): nothing to fill")
    key = (entry.get("data"), entry.get("split"))
    entries = [e for e in card_evaluations(card) if (e.get("data"), e.get("split")) != key] + [dict(entry)]
    head, rest = card.split(EVAL_BEGIN, 1)
    return head + evaluation_block(entries) + rest.split(EVAL_END, 1)[1]


def card_sources(config) -> list[dict]:
    """The ``sources`` argument of ``render_card`` for a ``TrainConfig``: each negatives file's meta."""
    from hardneg.core.provenance import read_meta

    out = []
    for s in config.sources:
        try:
            meta = read_meta(s.negatives)
        except Exception as e:  # noqa: BLE001 - an unreadable meta is reported in the card, not fatal
            log.warning("model card: cannot read the meta of %s (%s)", s.negatives, e)
            meta = None
        out.append({"data": s.data, "negatives": s.negatives, "split": s.split, "meta": meta})
    return out


def write_card(out: str | Path, config, run: Mapping[str, Any], used: Sequence[Mapping] = ()) -> Path:
    """Add the hardneg section to ``out/README.md`` (sentence-transformers' card; a bare card when
    there is none); ``used``: the trainer's per-source stats. Returns the card's path."""
    from hardneg.core.files import atomic_open, to_jsonable

    path = Path(out) / "README.md"
    st_card = path.read_text(encoding="utf-8") if path.is_file() else "# Sentence Transformer model\n"
    sources = card_sources(config)
    for s, u in zip(sources, used):
        s["used"] = u
    with atomic_open(path) as f:
        f.write(render_card(st_card, sources, to_jsonable(config), run))
    return path


def card_path(model_dir: str | Path) -> Path:
    """``model_dir/README.md`` when it is a card with a hardneg evaluation block, else HardnegError."""
    from hardneg.core.errors import HardnegError

    path = Path(model_dir) / "README.md"
    if not path.is_file() or EVAL_BEGIN not in path.read_text(encoding="utf-8"):
        raise HardnegError(f"--card: {path} is not a model card written by `hardneg train` (no hardneg "
                           "evaluation block): give --model a folder that `hardneg train` wrote, or drop --card")
    return path


def update_card_evaluation(model_dir: str | Path, entry: Mapping[str, Any]) -> Path:
    """Write ``entry`` into the evaluation table of ``model_dir/README.md`` (see ``set_evaluation``)."""
    from hardneg.core.files import atomic_open

    path = card_path(model_dir)
    card = set_evaluation(path.read_text(encoding="utf-8"), entry)
    with atomic_open(path) as f:
        f.write(card)
    return path


def push_to_hub(folder: str | Path, repo_id: str, *, private: bool | None = None, token: str | None = None,
                commit_message: str | None = None) -> str:
    """Create the model repo ``repo_id`` if needed and upload ``folder`` (model, card, meta; not
    ``checkpoints/``) with ``huggingface_hub``; returns the commit URL."""
    from huggingface_hub import HfApi

    from hardneg.core.errors import HardnegError

    if not (Path(folder) / "README.md").is_file():
        raise HardnegError(f"--push-to-hub: {folder} holds no finished model (no README.md): nothing uploaded")
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        info = api.upload_folder(repo_id=repo_id, repo_type="model", folder_path=str(folder),
                                 commit_message=commit_message or f"hardneg train: upload {Path(folder).name}",
                                 ignore_patterns=HUB_IGNORE)
    except Exception as e:  # noqa: BLE001 - network, auth, bad repo id: say what to do, keep the model
        raise HardnegError(f"--push-to-hub {repo_id} failed ({type(e).__name__}: {e}); the trained model is "
                           f"in {folder}: log in (huggingface-cli login or HF_TOKEN) and upload it with "
                           f"`huggingface-cli upload {repo_id} {folder}`") from None
    return str(getattr(info, "commit_url", info))
