"""``hardneg tune``: choose the mining threshold for THIS data and teacher, without training.

A threshold that suits one teacher's score scale does not suit another's (sentence-transformers
#3279: with another teacher ``relative_margin=0.05`` skipped 84% of the candidates), so measure it:

1. take the split's queries with two or more positives (grade > 0); each keeps its anchor (the
   best-graded positive; ties: qrels order, ``stages.sparse_labels``) as its only known positive and
   the others are held out;
2. fetch every teacher's candidate pool ONCE (``teacher.candidates``; dense and BM25 pools are
   cached on disk by ``PoolCache``, so a rerun takes seconds);
3. mine the pools with every setting of the sweep (``mining.mine.mine`` with ``anchor_only``) and
   measure it (``analysis.tune.measure``: held-out FN rate, yield, hardness, judge quality);
4. recommend the setting with the most full rows at or under ``max_fn_rate``
   (``analysis.tune.recommend``).

The measurement is a sparse-label estimate: ``hardneg mine`` later knows every positive and takes
the minimum positive score (``--positive-score min``), so its thresholds are at or below the tuned
ones: at most as many false negatives, possibly fewer full rows.

Here, not in ``mining``, because it wires three stages: mining (``mine``), analysis (the FN count
that ``inspect`` and the ablation report) and report (the plot); only ``experiment`` and ``cli``
may import all three.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hardneg.analysis.tune import DEFAULT_MAX_FN_RATE, measure, recommend
from hardneg.core.errors import HardnegError
from hardneg.core.options import opt
from hardneg.encode.base import ENCODER_BACKENDS
from hardneg.experiment.config import method_settings
from hardneg.experiment.stages import sparse_labels, subset_queries
from hardneg.mining.candidates import Candidates

log = logging.getLogger(__name__)

PERCS = (0.80, 0.85, 0.90, 0.92, 0.95, 0.97, 0.99, 1.0)
MARGINS = (0.0, 0.02, 0.05, 0.1)
ABS_QUANTILES = (0.5, 0.75, 0.9, 0.95, 0.99)  # of the first teacher's candidate scores
JUDGE_FRACS = (0.8, 0.85, 0.9, 0.95, 1.0)     # percpos 0.95 + agreement judge, with >= 2 teachers
DEFAULT_SWEEP = ("naive; percpos 0.8,0.85,0.9,0.92,0.95,0.97,0.99,1.0; marginpos 0,0.02,0.05,0.1; abs at the "
                 "50/75/90/95/99% quantiles of the first teacher's candidate scores; with >= 2 teachers also "
                 "percpos:0.95+agreement:0.8,0.85,0.9,0.95,1.0")
TEACHERS = "teachers"  # --help group


def _num(v) -> str:
    return repr(float(v)) if isinstance(v, float) else str(v)


@dataclass(frozen=True)
class Setting:
    """One point of the sweep: its label (a spec ``parse_setting`` reads back) and MineConfig keywords."""

    label: str
    params: dict


def setting(params: dict) -> Setting:
    """``Setting`` with its label from ``params``.

    >>> setting({"method": "percpos", "perc": 0.95, "judge": "agreement", "judge_frac": 0.9, "judge_min_votes": 1}).label
    'percpos:0.95+agreement:0.9'
    """
    label = params["method"]
    value = next((v for k, v in params.items() if k in ("shift", "max_score", "margin", "perc")), None)
    if value is not None:
        label += f":{_num(value)}"
    if params.get("judge") == "agreement":
        label += f"+agreement:{_num(params['judge_frac'])}"
        if params.get("judge_min_votes", 1) != 1:
            label += f":{params['judge_min_votes']}"
    return Setting(label, dict(params))


def parse_setting(spec: str) -> Setting:
    """``"percpos:0.9"``, ``"naive"``, ``"percpos:0.95+agreement:0.9"`` (judge_frac; ``:VOTES`` after
    it sets judge_min_votes, default 1) -> ``Setting``.

    >>> parse_setting("marginpos:0.05").params, parse_setting("percpos:0.95+agreement:0.9:2").label
    ({'method': 'marginpos', 'margin': 0.05}, 'percpos:0.95+agreement:0.9:2')
    """
    method, plus, judge = spec.strip().partition("+")
    params = method_settings(method.strip())
    if plus:
        name, _, rest = judge.strip().partition(":")
        frac, _, votes = rest.partition(":")
        if name != "agreement" or not frac:
            raise HardnegError(f"setting {spec!r}: after '+' give agreement:FRAC[:VOTES], e.g. percpos:0.95+agreement:0.9")
        try:
            params.update(judge="agreement", judge_frac=float(frac), judge_min_votes=int(votes or 1))
        except ValueError:
            raise HardnegError(f"setting {spec!r}: FRAC must be a number and VOTES an integer") from None
    return setting(params)


def default_settings(cands: list[Candidates]) -> list[Setting]:
    """The default sweep (``DEFAULT_SWEEP``); abs thresholds are quantiles of ``cands[0]``'s finite
    candidate scores, rounded to 4 decimals (one absolute threshold serves every teacher, so with
    teachers on different score scales abs is rarely meaningful)."""
    out = [setting({"method": "naive"})]
    out += [setting({"method": "percpos", "perc": p}) for p in PERCS]
    out += [setting({"method": "marginpos", "margin": m}) for m in MARGINS]
    s = cands[0].scores[(cands[0].doc_idx >= 0) & np.isfinite(cands[0].scores)].astype(np.float64)
    if s.size:
        thresholds = dict.fromkeys(round(float(t), 4) for t in np.quantile(s, ABS_QUANTILES))
        out += [setting({"method": "abs", "max_score": t}) for t in thresholds]
    if len(cands) >= 2:
        out += [setting({"method": "percpos", "perc": 0.95, "judge": "agreement", "judge_frac": f,
                         "judge_min_votes": 1}) for f in JUDGE_FRACS]
    return out


def _flat(value) -> tuple[str, ...]:
    """``"a,b"``, ``("a", "b,c")`` or the CLI's repeated comma lists ``[("a",), ("b", "c")]`` -> flat tuple.

    >>> _flat([("a",), ("b", "c")]), _flat("a, b"), _flat(("a", "b,c"))
    (('a', 'b', 'c'), ('a', 'b'), ('a', 'b', 'c'))
    """
    items = [value] if isinstance(value, str) else [x for v in value for x in ((v,) if isinstance(v, str) else v)]
    return tuple(p.strip() for x in items for p in x.split(",") if p.strip())


@dataclass(frozen=True)
class TuneConfig:
    """Every option of ``hardneg tune``; saved as the ``config`` of ``tune.json.meta.json``."""

    teacher: tuple[str, ...] = opt(help="teacher: a model path/alias (e.g. minilm), 'bm25' or 'random'; several: "
                                   "repeat the flag or give a comma list (then the agreement judge is swept too)", metavar="MODEL",
                                   group=TEACHERS)
    data: str = opt(help="data folder (BEIR layout) or dataset name")
    split: str = opt("train", "qrels split to tune on (its queries with two or more positives)")
    methods: tuple[str, ...] = opt((), "settings to sweep, comma-separated: naive, shifted:N, abs:T, marginpos:M, "
                                   "percpos:P, each optionally +agreement:FRAC[:VOTES] (needs >= 2 teachers)",
                                   default_help=DEFAULT_SWEEP, metavar="SPECS")
    max_fn_rate: float = opt(DEFAULT_MAX_FN_RATE, "target: the highest acceptable share of negatives that are held-out "
                             "positives, in [0, 1]. 0.2 because on NFCorpus/MiniLM the paper's best setting "
                             "(PercPos 95%) measures ~17-18% and naive ~30%")
    num_negatives: int = opt(4, "negatives per row; a row is full when it has this many")
    depth: int = opt(100, "candidates per query and teacher, fetched once (cached on disk)")
    max_queries: int | None = opt(None, "tune on a seeded sample of this many queries (faster)", default_help="all")
    seed: int = opt(42, "seed of the --max-queries sample")
    backend: str = opt("torch", "encoder backend for dense teachers", choices=ENCODER_BACKENDS, group=TEACHERS)
    max_length: int | None = opt(None, "max tokens per text for dense teachers, queries and passages alike",
                                 default_help="the model's",
                                 group=TEACHERS)
    cache_dir: str | None = opt(None, "embedding/pool cache", default_help="$HARDNEG_CACHE or ~/.cache/hardneg",
                                group=TEACHERS)
    output: str | None = opt(None, "write DIR/tune.json (+ tune.json.meta.json) and DIR/tune.png", metavar="DIR",
                             default_help="print only")

    def __post_init__(self) -> None:
        object.__setattr__(self, "teacher", _flat(self.teacher))
        object.__setattr__(self, "methods", _flat(self.methods))
        if not self.teacher:
            raise HardnegError("tune needs at least one --teacher")
        if not (isinstance(self.max_fn_rate, (int, float)) and 0.0 <= self.max_fn_rate <= 1.0):
            raise HardnegError(f"--max-fn-rate must be in [0, 1], got {self.max_fn_rate} (a share: 0.2 = 20%)")
        if self.num_negatives < 1 or self.depth < 1:
            raise HardnegError(f"--num-negatives and --depth must be >= 1, got {self.num_negatives}, {self.depth}")
        if self.num_negatives >= self.depth:
            raise HardnegError(f"--depth ({self.depth}) must exceed --num-negatives ({self.num_negatives})")
        if self.max_queries is not None and self.max_queries < 1:
            raise HardnegError(f"--max-queries must be >= 1, got {self.max_queries}")
        for s in self.settings():
            need = max(2, s.params.get("judge_min_votes", 1))  # one teacher: it only repeats a PercPos cut
            if s.params.get("judge") == "agreement" and len(self.teacher) < need:
                raise HardnegError(f"setting {s.label!r}: the agreement judge needs at least {need} teachers, "
                                   f"got {len(self.teacher)}: add --teacher")

    def settings(self) -> list[Setting]:
        """The ``--methods`` settings (empty: the default sweep, built from the pools)."""
        return list({s.label: s for s in map(parse_setting, self.methods)}.values())


@dataclass(frozen=True)
class TuningSplit:
    data: object                        # the tuning queries; each anchor first in its qrels (anchor_only mines it)
    hidden: dict[str, dict[str, int]]   # qid -> held-out judgements {doc_id: grade}
    qids: list[str]


def tuning_split(data, max_queries: int | None = None, seed: int = 42) -> TuningSplit:
    """The queries of ``data`` with >= 2 positives (a seeded sample of ``max_queries``), their anchors
    (``sparse_labels``) and the held-out judgements. The returned data keeps every judgement, anchor
    first, so ``mine(..., anchor_only=True)`` knows only the anchor and its judge can score itself
    against the rest."""
    multi = [q for q in data.query_ids() if len(data.relevant(q)) >= 2]
    if not multi:
        raise HardnegError(f"split {data.split!r} has no query with two or more positives (grade > 0): tuning needs "
                           "held-out positives to count false negatives; use a split with several positives per query")
    data = subset_queries(dataclasses.replace(data, qrels={q: data.qrels[q] for q in multi}), max_queries, seed)
    anchors, hidden = sparse_labels(data)
    qids = data.query_ids()
    qrels = {q: {**anchors.qrels[q], **hidden[q]} for q in qids}
    return TuningSplit(dataclasses.replace(data, qrels=qrels), hidden, qids)


def fetch_pools(teachers, data, qids: list[str], depth: int) -> list[Candidates]:
    """Each teacher's pool for ``qids``, asked for once (Candidates are used as given, subset to ``qids``)."""
    depth = min(depth, len(data.corpus))
    out = []
    for t in teachers:
        c = t if isinstance(t, Candidates) else t.candidates(data, qids, depth)
        try:
            out.append(c.subset(qids))
        except KeyError as e:
            raise HardnegError(f"teacher {c.teacher!r} returned no candidates for query {e.args[0]!r}") from None
    return out


def sweep(split: TuningSplit, cands: list[Candidates], settings: list[Setting], *, num_negatives: int,
          progress: bool = True) -> list[dict]:
    """Mine the pools with each setting (top selection, anchor only) and measure it; one dict per
    setting: ``setting`` (label), ``params`` and ``analysis.tune.measure``'s numbers."""
    from tqdm.auto import tqdm

    from hardneg.mining.config import MineConfig
    from hardneg.mining.mine import mine

    out = []
    for s in tqdm(settings, desc="tune", unit="setting", disable=not progress):
        config = MineConfig(**{"num_negatives": num_negatives, "anchor_only": True, **s.params})
        result = mine(split.data, cands, config)
        m = measure(result.rows, split.hidden, num_negatives, result.values["neg_minus_pos"],
                    result.stats.get("judge"))
        out.append({"setting": s.label, "params": s.params, **m})
    return out


@dataclass
class TuneResult:
    settings: list[dict]            # one per setting: label, params, measure() numbers
    recommendation: dict            # recommend() + the setting's params and the `hardneg mine` command
    queries: int                    # tuning queries (>= 2 positives)
    held_out: int                   # their held-out positives (grade > 0)
    teachers: list[dict] = field(default_factory=list)
    timings: dict = field(default_factory=dict)


def tune(data, teachers, config: TuneConfig, *, progress: bool = True) -> TuneResult:
    """The whole protocol (module doc) on ``data`` (one split) with ``teachers`` (Teacher objects or
    precomputed ``Candidates``, in ``config.teacher`` order)."""
    if len(teachers) != len(config.teacher):
        raise HardnegError(f"{len(teachers)} teachers given but the config names {len(config.teacher)}")
    t0 = time.perf_counter()
    split = tuning_split(data, config.max_queries, config.seed)
    cands = fetch_pools(teachers, data, split.qids, config.depth)
    t1 = time.perf_counter()
    settings = config.settings() or default_settings(cands)
    results = sweep(split, cands, settings, num_negatives=config.num_negatives, progress=progress)
    rec = recommend(results, config.max_fn_rate)
    rec["params"] = results[rec["index"]]["params"]
    rec["command"] = mine_command(config, rec["params"])
    held = sum(g > 0 for h in split.hidden.values() for g in h.values())
    timings = {"candidates_s": round(t1 - t0, 3), "sweep_s": round(time.perf_counter() - t1, 3)}
    return TuneResult(results, rec, len(split.qids), held,
                      [{"name": c.teacher, "fingerprint": c.fingerprint} for c in cands], timings)


def mine_command(config: TuneConfig, params: dict, output: str = "negatives.jsonl") -> str:
    """The ``hardneg mine`` command line that mines the whole split with ``params``.

    >>> c = TuneConfig(teacher=("minilm",), data="nfcorpus")
    >>> mine_command(c, {"method": "percpos", "perc": 0.9})
    'hardneg mine --teacher minilm --data nfcorpus --split train --output negatives.jsonl --method percpos --perc 0.9 --num-negatives 4 --depth 100'
    """
    parts = ["hardneg", "mine", *[x for t in config.teacher for x in ("--teacher", t)], "--data", config.data,
             "--split", config.split, "--output", output]
    for k, v in params.items():
        parts += [f"--{k.replace('_', '-')}", _num(v)]
    parts += ["--num-negatives", str(config.num_negatives), "--depth", str(config.depth)]
    if config.backend != "torch":
        parts += ["--backend", config.backend]
    if config.max_length is not None:
        parts += ["--max-length", str(config.max_length)]
    if config.cache_dir:
        parts += ["--cache-dir", config.cache_dir]
    return shlex.join(parts)


def _jsonable(obj):
    """NaN -> None (JSON has no NaN)."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def write_tune(output_dir: str | Path, result: TuneResult, config: TuneConfig, *, data) -> dict[str, Path]:
    """``DIR/tune.json`` (the result), its meta file and ``DIR/tune.png`` (the trade-off curve)."""
    from hardneg.core.files import write_json
    from hardneg.core.provenance import write_meta
    from hardneg.report.tune import plot_tradeoff

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "tune.json"
    write_json(path, _jsonable(dataclasses.asdict(result)))
    meta = write_meta(path, config, data_source=data.source, data_fingerprint=data.fingerprint(),
                      teachers=result.teachers, timings=result.timings)
    title = f"tune: {', '.join(config.teacher)} on {Path(config.data).name} {config.split} ({result.queries} queries)"
    png = plot_tradeoff(result.settings, out / "tune.png", recommended=result.recommendation["index"],
                        max_fn_rate=config.max_fn_rate, title=title)
    return {"json": path, "meta": meta, "png": png}
