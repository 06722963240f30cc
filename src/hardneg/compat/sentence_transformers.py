"""``mine_hard_negatives``: a drop-in for ``sentence_transformers.util.mine_hard_negatives`` (v6).

Change one import line and the same call returns the same ``datasets.Dataset`` columns, mined by
hardneg: texts get ids (sha256 of the text), teachers are hardneg's (``DenseTeacher`` over the loaded
model, ``RescoredTeacher`` for the cross-encoder), the peer's rules run as a counted filter chain
(``compat.window``), ``mining.mine`` selects, and ``compat.tables`` writes the peer's formats.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections import Counter
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, fields, replace

import numpy as np

from hardneg.compat.st_encoder import LoadedSTEncoder, model_name, weights_digest
from hardneg.compat.st_args import DropinArgs, check_args
from hardneg.compat.st_data import TextCorpus, text_id, to_data  # noqa: F401  (text_id, TextCorpus: public here)
from hardneg.compat.tables import to_columns
from hardneg.compat.window import PeerRules, apply_rules, resolve_range_max
from hardneg.core.errors import HardnegError
from hardneg.data.negatives import NegRow
from hardneg.data.types import RetrievalData
from hardneg.encode.base import Encoder
from hardneg.mining.config import MineConfig
from hardneg.mining.mine import MineResult, mine
from hardneg.mining.teachers.dense import DenseTeacher
from hardneg.mining.teachers.rescored import RescoredTeacher
from hardneg.scale.engine import DEFAULT_SHARD_ROWS, EngineConfig

log = logging.getLogger(__name__)

_SET_BY_DROPIN = {"method", "select", "num_negatives", "on_shortfall", "depth", "seed"}  # mine_options may not


@dataclass
class DropinInfo:
    """What ``return_stats=True`` hands back beside the dataset: the run's ``stats`` (hardneg's mining
    stats plus the rule counts, shortfall and settings), the ``result`` (``MineResult``: rows of ids;
    ``hardneg.write_negatives(path, info.result, info.config)`` saves it) and the ``data`` the ids
    belong to (``data.queries[qid]``, ``data.corpus.texts[data.corpus.index[doc_id]]``)."""

    stats: dict
    result: MineResult
    data: RetrievalData
    config: MineConfig


def mine_hard_negatives(
    dataset,
    model,
    anchor_column_name: str | None = None,
    positive_column_name: str | None = None,
    corpus: list[str] | None = None,
    cross_encoder=None,
    range_min: int = 0,
    range_max: int | None = None,
    max_score: float | None = None,
    min_score: float | None = None,
    absolute_margin: float | None = None,
    relative_margin: float | None = None,
    num_negatives: int = 3,
    sampling_strategy: str = "top",
    query_prompt_name: str | None = None,
    query_prompt: str | None = None,
    corpus_prompt_name: str | None = None,
    corpus_prompt: str | None = None,
    include_positives: bool = False,
    output_format: str = "triplet",
    output_scores: bool = False,
    batch_size: int = 32,
    faiss_batch_size: int = 16384,
    use_faiss: bool = False,
    use_multi_process: list[str] | bool = False,
    verbose: bool = True,
    cache_folder: str | None = None,
    as_triplets: bool | None = None,
    margin: float | None = None,
    *,
    method: str | None = None,
    selection: str | None = None,
    mine_options: dict | None = None,
    teachers=(),
    judge=None,
    voters=(),
    on_shortfall: str = "drop",
    seed: int = 42,
    engine=None,
    search_backend: str = "exact",
    return_stats: bool = False,
):
    """Add hard negatives to a dataset of (anchor, positive) pairs: sentence-transformers 6's
    ``mine_hard_negatives``, same parameters, same output columns, mined by hardneg.

    Replace ``from sentence_transformers.util import mine_hard_negatives`` with
    ``from hardneg import mine_hard_negatives``; the call and the ``SentenceTransformerTrainer`` that
    consumes the result stay as they are. The model is embedded once (the loaded object is used, not
    re-loaded), each anchor's nearest corpus texts are retrieved with hardneg's exact search (memory
    bounded by query blocks, never the anchors x corpus matrix), optionally rescored by the
    cross-encoder, filtered by the rules below and the negatives picked from what survives.

    How the candidates of one anchor become negatives (the peer's semantics, in this order):

    1. **retrieval**: the top ``range_max + max_positives + 1`` corpus texts by the model's cosine
       similarity (``max_positives``: the most rows any one anchor has in ``dataset``); with
       ``cross_encoder`` they are rescored and re-ranked by it, and every threshold below applies to
       the cross-encoder's scores;
    2. **positives** are removed by id: every positive of the same anchor text, wherever it ranks; so is
       the anchor's own text when the corpus holds it (unless it is one of its positives);
    3. **score rules**, each inclusive as the peer's: ``absolute_margin`` m drops ``s + m > p``;
       ``relative_margin`` r drops ``s > p - |p| * r`` (sign-safe; 0.05 is NV-Retriever's
       TopK-PercPos 95%); ``max_score`` drops ``s > max_score``; ``min_score`` drops ``s < min_score``.
       ``p`` is the anchor's *lowest* positive score (the harder positive) when it has several;
    4. **window**: of the survivors in score order, those ranked ``range_min`` .. ``range_max - 1``;
    5. **sampling**: ``"top"`` takes the first ``num_negatives``; ``"random"`` draws ``num_negatives``
       of the window uniformly without replacement (once per anchor: its rows share the draw, as in the
       peer) and keeps them in score order.

    Output formats (``output_scores=False`` / ``True``; ``anchor`` / ``positive`` are your column names):

    * ``"triplet"``: (anchor, positive, negative) — one row per negative; + ``scores`` = [pos, neg].
    * ``"n-tuple"``: (anchor, positive, negative_1 .. negative_n); + ``scores`` = [pos, neg_1 .. neg_n].
    * ``"labeled-pair"``: (anchor, positive, label): per anchor its positives (1), then its negatives (0);
      with scores the ``label`` column is replaced by ``score``.
    * ``"labeled-list"``: (anchor, [positive, negatives...], labels [1, 0, ...]); with scores ``labels``
      is replaced by ``scores``.

    Rows come grouped by anchor (in order of first appearance), positives in order of appearance;
    repeated anchor texts are one anchor with several positives, repeated (anchor, positive) pairs
    one row. Scores are plain floats (cosine of the normalised embeddings, or the cross-encoder's).

    Example::

        >>> from datasets import Dataset                                     # doctest: +SKIP
        >>> from sentence_transformers import SentenceTransformer            # doctest: +SKIP
        >>> from hardneg import mine_hard_negatives                          # doctest: +SKIP
        >>> model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")  # doctest: +SKIP
        >>> pairs = Dataset.from_dict({"query": queries, "answer": answers})  # doctest: +SKIP
        >>> triplets = mine_hard_negatives(pairs, model, relative_margin=0.05, num_negatives=5,
        ...                                range_max=50)                      # doctest: +SKIP
        >>> triplets.column_names                                           # doctest: +SKIP
        ['query', 'answer', 'negative']
        >>> ds, info = mine_hard_negatives(pairs, model, output_format="n-tuple", num_negatives=4,
        ...                                return_stats=True)                 # doctest: +SKIP
        >>> # info.stats["rows_short"]: pairs short of 4 negatives (left out: on_shortfall="drop");
        >>> # info.stats["short"]: each of them, [{"row": input row, "anchor": ..., "negatives": found, ...}]
        >>> # info.result.rows: the mined rows as ids (hardneg.write_negatives(path, info.result, info.config))

    Where this differs from sentence-transformers 6.3 (each on purpose; rows are otherwise the same):

    * **No row disappears unreported.** The peer's n-tuple output silently drops every row short of
      ``num_negatives`` (and its labeled-list / triplet output rows with no negative), saying at most
      how many when ``verbose``. Here every short row is counted (``stats["rows_short"]``,
      ``stats["short"]`` lists each: input row, anchor, negatives found) and logged as a warning even
      with ``verbose=False``; ``on_shortfall="drop"`` (default) leaves them out as the peer does,
      ``"keep"`` keeps them with ``None`` in the cells they cannot fill.
    * **include_positives** (#4053): the peer lets ``absolute_margin`` / ``relative_margin`` /
      ``max_score`` / ``min_score`` remove the positives it was asked to include (``absolute_margin``
      always removes the hardest one), only warning. Here the positives are exempt from the score rules;
      only ``range_min`` / ``range_max`` (rank cuts) can still leave one out. As in the peer, the format
      becomes ``"n-tuple"`` and the positive may appear among the ``negative_i`` columns (a ranking for
      reranker evaluation); hardneg's extras (method, selection, teachers, judge) are refused with it.
    * **cross_encoder** is always used when given, as in the peer since 6.3 (6.2 and earlier rescored
      only when a margin or score rule was set and otherwise silently ignored it).
    * **sampling_strategy="random"** is seeded (``seed``): the same call gives the same rows. The peer
      draws from Python's global ``random`` state (different rows each run), so random rows agree
      with it only in distribution: same window, same count, score order.
    * **The known bugs fixed in 6.2 stay fixed**: relative_margin is sign-safe (#3819); retrieval
      keeps room for every positive on every search path and padding never becomes a negative
      (#3872); ``num_negatives`` larger than the window is a clear error (#3903).
    * **Errors** are ``HardnegError`` with the parameter named: an ``anchor_column_name`` /
      ``positive_column_name`` that is not a column (the peer silently uses the first / second
      column), a ``sampling_strategy`` other than "top" / "random" (the peer ignores it), a non-string
      anchor or positive, ``num_negatives`` not below the corpus size.
    * **Counts**: each removed candidate is counted once, by the rule that removed it (as the peer's
      ``min_score`` count does since 6.3); positives, padding and the anchor's own text are counted too.
    * **Caching**: ``cache_folder`` is hardneg's cache root (``embeddings/``, ``pools/``), keyed by the
      weights' hash, prompts and texts; a second call with other rules re-uses the embeddings *and*
      the candidate pools. The peer's ``.npy`` files there are not read. Without ``cache_folder``
      nothing is written outside a temporary folder.
    * **Memory** stays bounded: the peer holds the corpus vectors, a second normalised copy and a
      ``min(faiss_batch_size, anchors) x corpus`` score block (16384 x N floats by default: 13 GB at
      200k passages); hardneg's exact search keeps only per-block top-k lists, and above 102,400
      passages (``default_engine``) the vectors go to disk shards that search streams, one at a time.
      Measured with ``benchmarks/dropin_memory.py`` (20k x 2k: peak RSS 0.20x the peer's, 1.6x the
      embedding matrix in memory, 0.5x with shards). ``engine=EngineConfig(max_memory="2GB")`` sets
      the bound yourself.
    * **Similarity** is the dot product of normalised embeddings (= cosine); a model whose
      ``similarity_fn_name`` is not cosine/dot gets a warning (the peer would use its function).
    * ``use_faiss`` needs no FAISS and changes nothing: exact search is already blocked and exact
      (``search_backend`` chooses an approximate FAISS index instead); no 2048-per-query GPU cap.
      ``faiss_batch_size`` is accepted and validated (blocks are bounded anyway); ``use_multi_process``
      is accepted and ignored with a log line (``engine=EngineConfig("ray")`` distributes encoding).
      Progress and the summary table go to ``logging`` (INFO), not ``print``.

    Args (the peer's; see its documentation for more):
        dataset: a ``datasets.Dataset`` of (anchor, positive) pairs.
        model: a loaded ``SentenceTransformer`` (or any hardneg ``Encoder``, then without prompts).
        anchor_column_name, positive_column_name: default the first and second column.
        corpus: extra candidate texts; the positives are always part of the corpus.
        cross_encoder: a loaded ``CrossEncoder`` that rescores the candidates and the positives.
        range_min (0), range_max (None: derived as the peer does), max_score, min_score,
        absolute_margin, relative_margin, num_negatives (3), sampling_strategy ("top"): see above.
        query_prompt_name, query_prompt, corpus_prompt_name, corpus_prompt: passed to
            ``model.encode_query`` / ``encode_document`` (``prompt`` wins over ``prompt_name``).
        include_positives (False), output_format ("triplet"), output_scores (False): see above.
        batch_size (32): encoding (and cross-encoder) batch size.
        faiss_batch_size, use_faiss, use_multi_process: accepted, see above.
        verbose (True): progress bars and the peer's summary table (logged at INFO).
        cache_folder (None): hardneg's cache root for embeddings and pools.
        as_triplets, margin: deprecated as in the peer (-> output_format, absolute_margin).

    Keyword-only (hardneg's):
        method: a hardneg filter (``"naive"``, ``"shifted"``, ``"abs"``, ``"marginpos"``, ``"percpos"``)
            applied after the peer's rules, with its parameters from ``mine_options`` (``perc``,
            ``margin``, ``shift``, ``max_score``; strict thresholds, hardneg's).
        selection: a hardneg selection (``"top"``, ``"sampled"``, ``"top1-sampled"``, ``"simans"``) over the
            window instead of ``sampling_strategy`` (sampled per (anchor, positive) row).
        mine_options: further ``MineConfig`` fields (``sample_from``, ``sample_temperature``,
            ``ensemble``, ``judge``, ``false_negatives``, ...).
        teachers: more hardneg ``Teacher`` s (e.g. ``load_teacher("bm25")``) mined with the same rules on
            their own scores and combined by ``mine_options["ensemble"]``.
        judge, voters: a false-negative judge (``mining.judges``) and judge-only teachers, as ``mine``.
        on_shortfall ("drop"): "drop" or "keep" the rows that cannot be filled (counted either way).
        seed (42): for ``"random"`` and hardneg's sampled selections.
        engine, search_backend ("exact"): hardneg's ``EngineConfig`` (default ``default_engine``) and
            search backend.
        return_stats (False): return ``(dataset, DropinInfo)`` instead of the dataset.

    Returns:
        ``datasets.Dataset`` in ``output_format`` (or ``(dataset, DropinInfo)`` with ``return_stats``).
    """
    from datasets import Dataset

    t0 = time.perf_counter()
    args = check_args(dataset, model, anchor_column_name, positive_column_name, output_format, output_scores,
                      as_triplets, margin, absolute_margin, include_positives, range_min, range_max,
                      num_negatives, sampling_strategy, batch_size, faiss_batch_size, use_faiss, use_multi_process,
                      on_shortfall, method, selection, teachers, judge, voters)
    data, pair_rows, max_positives = to_data(dataset, args.anchor, args.positive, corpus)
    known = {q: data.relevant(q) for q in data.query_ids()}
    filtered = any(v is not None for v in (args.absolute_margin, relative_margin, max_score)) or (
        cross_encoder is not None and min_score is not None) or method not in (None, "naive")
    rmax = resolve_range_max(range_max, range_min=range_min, num_negatives=num_negatives,
                             max_positives=max_positives, filtered=filtered)
    if range_max is None:
        log.info("range_max set to %d from the parameters", rmax)
    # room for every positive and for the anchor's own text (the peer's range_max + max_positives + 1, 6.3)
    depth = rmax + max_positives + 1
    config = _mine_config(method, selection, num_negatives, depth, seed, mine_options)
    rules = PeerRules(rmax, num_negatives, range_min, max_score, min_score, args.absolute_margin, relative_margin,
                      args.include_positives, sampling_strategy, method, config.filter_params(), seed,
                      exclude_anchor_text=True)
    prompts = {"query_prompt": query_prompt, "query_prompt_name": query_prompt_name, "corpus_prompt": corpus_prompt,
               "corpus_prompt_name": corpus_prompt_name}
    with ExitStack() as stack:
        cache_dir = cache_folder or stack.enter_context(tempfile.TemporaryDirectory(prefix="hardneg-dropin-"))
        encoder = _encoder(model, prompts, batch_size, verbose, bool(cache_folder))
        engine = engine or default_engine(len(data.corpus))
        teacher = _teacher(encoder, cross_encoder, batch_size, cache_dir, bool(cache_folder), engine, search_backend)
        qids = data.query_ids()
        windowed, removed = [], Counter()
        for t in (teacher, *teachers):
            w, counts = apply_rules(t.candidates(data, qids, depth), data, known, rules)
            windowed.append(w)
            removed.update(counts)
        if args.include_positives:
            result = _ranking_rows(windowed[0], data, known, num_negatives)
        else:
            vpools = [v.candidates(data, qids, depth) for v in voters]
            with _quiet_mine_shortfall():  # reported below in the drop-in's terms (not mine's CLI flags)
                result = mine(data, windowed, replace(config, method="naive"), judge=judge, voters=vpools)
    table = to_columns(result.rows, data, args.output_format, num_negatives=num_negatives,
                       output_scores=args.output_scores, keep_short=on_shortfall == "keep",
                       anchor=args.anchor, positive=args.positive)
    stats = _stats(result, table, pair_rows, data, removed, num_negatives, args, rmax, on_shortfall)
    stats["seconds"] = round(time.perf_counter() - t0, 3)
    _report(stats, args, verbose)
    out = Dataset.from_dict(table.cols)
    return (out, DropinInfo(stats, result, data, config)) if return_stats else out


def default_engine(n_passages: int) -> EngineConfig:
    """In memory up to ``DEFAULT_SHARD_ROWS`` passages (fastest); above, the corpus vectors go to shards of
    that many rows (in the cache folder, else a temporary one) and search streams them, so the drop-in
    holds one shard, the queries and the (anchors x depth) pools, never the whole matrix twice.
    Same rows either way (``hardneg.scale.engine``)."""
    return EngineConfig() if n_passages <= DEFAULT_SHARD_ROWS else EngineConfig(shard_rows=DEFAULT_SHARD_ROWS)


@contextmanager
def _quiet_mine_shortfall():
    """Drop ``mine``'s short-rows warning (it names CLI flags) while the drop-in reports the same rows itself."""
    class Skip(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return "have fewer than" not in record.getMessage()

    target, skip = logging.getLogger("hardneg.mining.mine"), Skip()
    target.addFilter(skip)
    try:
        yield
    finally:
        target.removeFilter(skip)


def _mine_config(method, selection, n: int, depth: int, seed: int, options: dict | None) -> MineConfig:
    """hardneg's mining settings: the drop-in sets method / selection / n / depth / seed, ``options`` the rest
    (``method`` is checked here and run in the window step; mining itself runs ``naive``)."""
    options = dict(options or {})
    clash = _SET_BY_DROPIN & set(options)
    if clash:
        raise HardnegError(f"mine_options may not set {sorted(clash)}: pass them as the drop-in's own arguments "
                           "(method=, selection=, num_negatives=, on_shortfall=, seed=; the depth is range_max)")
    unknown = set(options) - {f.name for f in fields(MineConfig)}
    if unknown:
        raise HardnegError(f"unknown mine_options {sorted(unknown)}: see hardneg.MineConfig")
    return MineConfig(method=method or "naive", select=selection or "top", num_negatives=n, depth=depth,
                      on_shortfall="keep", seed=seed, **options)


def _encoder(model, prompts: dict, batch_size: int, verbose: bool, cached: bool):
    """The loaded model as an ``Encoder``: wrapped (``LoadedSTEncoder``), or used as it is when it already
    is a hardneg ``Encoder``."""
    if isinstance(model, Encoder) and not hasattr(model, "encode_query"):
        if any(prompts.values()):
            raise HardnegError("prompts are for a SentenceTransformer model; a hardneg Encoder carries its own")
        return model
    return LoadedSTEncoder(model, batch_size=batch_size, progress=verbose, fingerprinted=cached, **prompts)


def _teacher(encoder, cross_encoder, batch_size: int, cache_dir, cached: bool, engine, search_backend: str):
    """The encoder as a ``DenseTeacher``, rescored by the cross-encoder when one is given."""
    teacher = DenseTeacher(encoder, cache_dir=cache_dir, cache=cached, search_backend=search_backend, engine=engine)
    if cross_encoder is None:
        return teacher
    ce_fp = (weights_digest(cross_encoder) or model_name(cross_encoder)) if cached else f"object:{id(cross_encoder)}"
    return RescoredTeacher(teacher, cross_encoder, batch_size=batch_size, name=model_name(cross_encoder),
                           fingerprint=ce_fp[:32], cache_dir=cache_dir, cache=cached)


def _ranking_rows(cand, data, known: dict[str, list[str]], n: int) -> MineResult:
    """include_positives: each (anchor, positive) row gets the anchor's window as it is (positives included)."""
    ids = data.corpus.ids
    rows = []
    for r, qid in enumerate(cand.qids):
        cols = np.flatnonzero(cand.doc_idx[r] >= 0)[:n]
        neg_ids = [ids[cand.doc_idx[r, c]] for c in cols]
        scores = [float(cand.scores[r, c]) for c in cols]
        for pos_id in known[qid]:
            rows.append(NegRow(qid, pos_id, cand.pos_scores.get(qid, {}).get(pos_id), list(neg_ids), list(scores),
                               [cand.teacher] * len(neg_ids)))
    stats = {"queries": len(cand.qids), "rows": len(rows), "removed": {}}
    return MineResult(rows, stats, {}, [{"name": cand.teacher, "fingerprint": cand.fingerprint}],
                      data.fingerprint(), search=[cand.search])


def _stats(result: MineResult, table, pair_rows: dict, data, removed: Counter, n: int, args: DropinArgs, rmax: int,
           on_shortfall: str) -> dict:
    rows = result.rows
    short = [i for i, r in enumerate(rows) if len(r.neg_ids) < n]
    left_out = set(table.left_out)
    stats = dict(result.stats)
    stats["removed"] = {**{k: v for k, v in removed.items() if v}, **{k: v for k, v in stats.get("removed", {}).items()
                                                                     if v and k not in ("padding", "naive")}}
    stats.update({
        "output_format": args.output_format, "range_max": rmax, "on_shortfall": on_shortfall,
        "pairs": len(rows), "rows_out": len(next(iter(table.cols.values()), [])),
        "rows_short": len(short), "rows_dropped": len(table.left_out), "rows_padded": len(table.padded),
        "short": [{"row": pair_rows[(rows[i].qid, rows[i].pos_id)], "anchor": data.queries[rows[i].qid],
                   "negatives": len(rows[i].neg_ids), "dropped": i in left_out} for i in short],
    })
    return stats


def _report(stats: dict, args: DropinArgs, verbose: bool) -> None:
    """The shortfall warning (always) and, with ``verbose``, the peer's summary table (INFO)."""
    if stats["rows_short"]:
        first = stats["short"][0]
        fate = (f"{stats['rows_dropped']} left out of the {args.output_format} output" if stats["rows_dropped"]
                else f"{stats['rows_padded'] or stats['rows_short']} kept")
        log.warning("%d of %d (anchor, positive) rows have fewer than the requested negatives (%s); first: input row "
                    "%d (%r, %d found). return_stats=True lists them all; raise range_max or loosen the margins / "
                    "max_score to fill them", stats["rows_short"], stats["pairs"], fate, first["row"],
                    first["anchor"][:60], first["negatives"])
    if not verbose:
        return
    for name, count in stats["removed"].items():
        log.info("removed %s candidates: %s", f"{count:,}", name)
    summaries = [stats.get(k) or {} for k in ("pos_score", "neg_score", "neg_minus_pos")]
    if summaries[0].get("count"):
        log.info("%-6s %14s %14s %14s", "Metric", "Positive", "Negative", "Neg - Pos")
        for key, label in (("count", "Count"), ("mean", "Mean"), ("std", "Std"), ("min", "Min"), ("q25", "25%"),
                           ("q50", "50%"), ("q75", "75%"), ("max", "Max")):
            cells = [("" if v is None else f"{v:,}" if key == "count" else f"{v:.4f}")
                     for v in (sm.get(key) for sm in summaries)]
            log.info("%-6s %14s %14s %14s", label, *cells)
    log.info("%d rows out (%s) from %d (anchor, positive) pairs in %.1f s", stats["rows_out"], args.output_format,
             stats["pairs"], stats.get("seconds", 0.0))
