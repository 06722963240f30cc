"""MTEB interop: our evaluation written in MTEB's result layout, and an MTEB task over our data.

``hardneg evaluate --mteb-json DIR`` writes what ``mteb`` itself writes for one model and one
retrieval task (its ``ResultCache.save_to_cache``), so MTEB's tooling reads it:

    DIR/<model name, "/" -> "__">/<revision>/<TaskName>.json   the TaskResult (``TaskResult.to_disk``)
    DIR/<model name, "/" -> "__">/<revision>/model_meta.json   the ModelMeta fields we know, others null

``DIR`` plays the part of MTEB's ``results/`` folder (``mteb.ResultCache(cache_path=P)`` reads
``P/results``). MTEB reads every ``*.json`` of a revision folder as a task result, so nothing else goes
there; the provenance of the numbers is in the file itself: ``dataset_revision`` is our data
fingerprint (``RetrievalData.fingerprint()``), the revision folder is the encoder's fingerprint
(weights + settings), and ``mteb_version`` is null because mteb did not compute them (hardneg did, with
MTEB's definitions: ``evaluation.metrics``). Scores are rounded to 6 decimals as ``to_disk`` does.

The metrics are MTEB's retrieval scores that we compute: ``ndcg_at_K``, ``map_at_K``, ``recall_at_K``,
``precision_at_K`` and ``mrr_at_K`` for MTEB's K values up to the retrieval depth, plus ``accuracy``
(= ``recall_at_1``, as MTEB) and ``main_score`` (``ndcg_at_10``). Not written: MTEB's ``nauc_*`` and
``hit_rate_at_*`` (we compute neither); a reader asking for one gets a KeyError, not a made-up value.

``mteb_task(data)`` (needs the optional ``mteb`` package: ``pip install 'hardneg[mteb]'``) builds an
``AbsTaskRetrieval`` over an in-memory ``RetrievalData``, so MTEB's own evaluator can score a model on
exactly the data ``hardneg evaluate`` used (``tests/test_mteb_agreement.py``).
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any, Mapping, Sequence

from hardneg.core.errors import HardnegError

#: MTEB's retrieval cut-offs (``AbsTaskRetrieval.k_values``).
MTEB_K_VALUES = (1, 3, 5, 10, 20, 100, 1000)

#: BEIR folder names -> MTEB task names (the folder's name decides; ``--mteb-task-name`` overrides).
MTEB_TASK_NAMES = {
    "arguana": "ArguAna", "climate-fever": "ClimateFEVER", "dbpedia-entity": "DBPedia", "fever": "FEVER",
    "fiqa": "FiQA2018", "hotpotqa": "HotpotQA", "msmarco": "MSMARCO", "nfcorpus": "NFCorpus", "nq": "NQ",
    "quora": "QuoraRetrieval", "scidocs": "SCIDOCS", "scifact": "SciFact", "trec-covid": "TRECCOVID",
    "webis-touche2020": "Touche2020",
}

#: the model alias ``minilm`` is this hub model (``encode.models.ALIASES``).
ALIAS_NAMES = {"minilm": "sentence-transformers/all-MiniLM-L6-v2"}

# our metric family -> MTEB's score key prefix
_MTEB_KEY = {"ndcg": "ndcg_at_", "map": "map_at_", "recall": "recall_at_", "p": "precision_at_", "mrr": "mrr_at_"}

# ModelMeta.to_dict()'s keys, in mteb 2.26's order (what ResultCache writes as model_meta.json)
MODEL_META_FIELDS = (
    "loader_kwargs", "name", "revision", "release_date", "languages", "n_parameters",
    "n_active_parameters_override", "n_embedding_parameters", "memory_usage_mb", "max_tokens", "embed_dim",
    "license", "open_weights", "public_training_code", "public_training_data", "framework", "reference",
    "similarity_fn_name", "use_instructions", "training_datasets", "adapted_from", "superseded_by",
    "modalities", "model_type", "citation", "contacts", "experiment_kwargs", "output_dtypes",
    "extra_requirements_groups", "loader", "is_cross_encoder",
)


def mteb_metric_names(k: int) -> list[str]:
    """Our names of the MTEB metrics computable with retrieval depth ``k``.

    >>> mteb_metric_names(5)
    ['ndcg@1', 'ndcg@3', 'ndcg@5', 'map@1', 'map@3', 'map@5', 'recall@1', 'recall@3', 'recall@5', 'p@1', 'p@3', 'p@5', 'mrr@1', 'mrr@3', 'mrr@5']
    """
    return [f"{fam}@{c}" for fam in _MTEB_KEY for c in MTEB_K_VALUES if c <= k]


def mteb_key(metric: str) -> str:
    """Our metric name -> MTEB's score key.

    >>> mteb_key("ndcg@10"), mteb_key("p@5"), mteb_key("mrr@100")
    ('ndcg_at_10', 'precision_at_5', 'mrr_at_100')
    """
    fam, _, k = metric.strip().lower().partition("@")
    if fam not in _MTEB_KEY or not k.isdigit():
        raise HardnegError(f"metric {metric!r} has no MTEB name (known: ndcg@K, map@K, recall@K, p@K, mrr@K)")
    return f"{_MTEB_KEY[fam]}{k}"


def task_name_for(source: str) -> str:
    """MTEB's task name for a data spec or folder: a known BEIR name, else the folder's own name.

    >>> task_name_for("../shared/data/scifact"), task_name_for("nfcorpus"), task_name_for("/x/my-data/")
    ('SciFact', 'NFCorpus', 'my-data')
    """
    name = Path(str(source).rstrip("/")).name or str(source)
    return MTEB_TASK_NAMES.get(name.lower(), name)


def model_name_for(spec: str) -> str:
    """MTEB's model name for a model spec: the alias's hub id, a hub id as is, a folder's name.

    >>> model_name_for("minilm"), model_name_for("BAAI/bge-small-en-v1.5"), model_name_for("/runs/ft/")
    ('sentence-transformers/all-MiniLM-L6-v2', 'BAAI/bge-small-en-v1.5', 'ft')
    """
    if spec in ALIAS_NAMES:
        return ALIAS_NAMES[spec]
    p = Path(spec).expanduser()
    if p.exists() or spec.startswith((".", "/", "~")) or spec.count("/") != 1:
        return p.name or spec
    return spec


def task_result(metrics: Mapping[str, float], *, task_name: str, split: str, dataset_revision: str,
                evaluation_time: float | None, languages: Sequence[str] = ("eng-Latn",),
                hf_subset: str = "default", main_score: str = "ndcg@10",
                date: float | None = None) -> dict[str, Any]:
    """The JSON object ``TaskResult.to_disk`` writes for one split of one retrieval task.

    ``metrics`` are our means (``{"ndcg@10": value, ...}``); scores are rounded to 6 decimals as MTEB
    rounds them on disk; ``mteb_version`` is null (hardneg, not mteb, computed them).

    >>> r = task_result({"ndcg@10": 0.6451234567, "recall@1": 0.5}, task_name="SciFact", split="test",
    ...                 dataset_revision="ab12", evaluation_time=1.5, date=0.0)
    >>> r["scores"]["test"][0]
    {'ndcg_at_10': 0.645123, 'recall_at_1': 0.5, 'accuracy': 0.5, 'main_score': 0.645123, 'hf_subset': 'default', 'languages': ['eng-Latn'], 'mteb_version': None}
    """
    if main_score not in metrics:
        raise HardnegError(f"the main score {main_score!r} is not among the metrics computed")
    scores: dict[str, Any] = {mteb_key(m): round(float(v), 6) for m, v in metrics.items()}
    if "recall_at_1" in scores:
        scores["accuracy"] = scores["recall_at_1"]  # MTEB reports recall@1 as accuracy too
    scores.update(main_score=round(float(metrics[main_score]), 6), hf_subset=hf_subset,
                  languages=list(languages), mteb_version=None)
    return {
        "dataset_revision": dataset_revision,
        "task_name": task_name,
        "mteb_version": None,
        "scores": {split: [scores]},
        "evaluation_time": evaluation_time,
        "kg_co2_emissions": None,
        "date": datetime.datetime.now().timestamp() if date is None else date,
        "evaluation_phases": None,
    }


def model_meta(name: str, revision: str, *, max_tokens: int | None = None, embed_dim: int | None = None,
               similarity: str = "cosine") -> dict[str, Any]:
    """MTEB's ``model_meta.json`` for a model hardneg evaluated: what we know, null elsewhere.

    >>> m = model_meta("org/m", "abc", embed_dim=384)
    >>> m["name"], m["revision"], m["embed_dim"], m["framework"], m["license"]
    ('org/m', 'abc', 384, ['Sentence Transformers', 'PyTorch'], None)
    """
    meta: dict[str, Any] = dict.fromkeys(MODEL_META_FIELDS)
    meta.update(loader_kwargs={}, name=name, revision=revision, max_tokens=max_tokens, embed_dim=embed_dim,
                framework=["Sentence Transformers", "PyTorch"], similarity_fn_name=similarity,
                modalities=["text"], model_type=["dense"], is_cross_encoder=False)
    return meta


def result_path(root: str | Path, model_name: str, revision: str, task_name: str) -> Path:
    """Where MTEB keeps a task result (``ResultCache.get_task_result_path`` under ``root``).

    >>> result_path("res", "org/my model", "abc", "SciFact").as_posix()
    'res/org__my_model/abc/SciFact.json'
    """
    return Path(root) / model_name.replace("/", "__").replace(" ", "_") / revision / f"{task_name}.json"


def write_mteb_results(root: str | Path, metrics: Mapping[str, float], *, task_name: str, model_name: str,
                       revision: str, split: str, dataset_revision: str, evaluation_time: float | None = None,
                       max_tokens: int | None = None, embed_dim: int | None = None) -> Path:
    """Write the task result and ``model_meta.json`` under ``root`` in MTEB's layout; returns the
    task result's path."""
    from hardneg.core.files import write_json

    path = result_path(root, model_name, revision, task_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path.parent / "model_meta.json",
               model_meta(model_name, revision, max_tokens=max_tokens, embed_dim=embed_dim))
    write_json(path, task_result(metrics, task_name=task_name, split=split, dataset_revision=dataset_revision,
                                 evaluation_time=evaluation_time))
    return path


def mteb_task(data, *, name: str | None = None, ignore_identical_ids: bool = True,
              languages: Sequence[str] = ("eng-Latn",)):
    """An ``mteb`` retrieval task (``AbsTaskRetrieval``) over ``data`` (a ``RetrievalData``), in memory.

    The corpus goes in as MTEB's ``id`` / ``title`` / ``text`` columns (MTEB joins title and text as
    ``Corpus.passage_texts`` does), the queries of the split and its qrels unchanged; the task's
    ``dataset_revision`` is ``data.fingerprint()``. ``ignore_identical_ids`` is ours by default (BEIR's
    rule; MTEB sets it per task). Needs ``pip install 'hardneg[mteb]'``.
    """
    try:
        from datasets import Dataset
        from mteb.abstasks.retrieval import AbsTaskRetrieval
        from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData
        from mteb.abstasks.task_metadata import TaskMetadata
    except ImportError as e:
        raise HardnegError(f"mteb_task needs the mteb package ({e}): pip install 'hardneg[mteb]'") from None

    corpus, split = data.corpus, data.split
    task_name = name or task_name_for(data.source or "hardneg-data")
    metadata = TaskMetadata(
        name=task_name, description=f"hardneg data {data.source or '(in memory)'}, split {split}",
        dataset={"path": data.source or "in-memory", "revision": data.fingerprint()},
        type="Retrieval", category="t2t", modalities=["text"], eval_splits=[split],
        eval_langs=list(languages), main_score="ndcg_at_10")

    def load_data(self, num_proc=None, **kwargs) -> None:
        split_data = RetrievalSplitData(
            corpus=Dataset.from_dict({"id": list(corpus.ids), "title": list(corpus.titles),
                                      "text": list(corpus.texts)}),
            queries=Dataset.from_dict({"id": list(data.queries), "text": list(data.queries.values())}),
            relevant_docs={q: dict(d) for q, d in data.qrels.items()}, top_ranked=None)
        self.dataset = {"default": {split: split_data}}
        self.data_loaded = True

    cls = type("HardnegRetrievalTask", (AbsTaskRetrieval,),
               {"metadata": metadata, "load_data": load_data, "ignore_identical_ids": ignore_identical_ids})
    return cls()
