"""hardneg: positive-aware hard-negative mining (NV-Retriever) and contrastive fine-tuning.

One verb per pipeline stage, loaded lazily (PEP 562) so ``import hardneg`` and ``hardneg --help``
stay fast::

    import hardneg as hn
    config = hn.MineConfig(method="percpos", perc=0.95, num_negatives=1)
    hn.write_negatives("neg.jsonl", hn.mine(hn.load_data("scifact", "train"), [hn.load_teacher("bm25")], config), config)
    model = hn.train(hn.TrainConfig("minilm", (hn.Source("scifact", "neg.jsonl"),), "runs/ft", max_steps=20))
    print(hn.evaluate(hn.load_encoder(str(model)), hn.load_data("scifact", "test")).metrics["ndcg@10"])

Packages, data flowing one way: ``core`` under everything; ``data``, ``encode``, ``search`` on core;
``scale`` on encode + search; ``mining`` on data (its ``teachers`` also on encode, search, scale);
``training`` on data + encode (never mining: the negatives file in ``data`` is the contract);
``evaluation`` on encode + search; ``analysis`` -> ``report``; ``experiment`` wires them; ``cli`` on top
(the rules are in ``docs/architecture.md`` and enforced by ``tests/test_layers.py``).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: public name -> module that defines it
_API = {
    # errors
    "HardnegError": "hardneg.core.errors", "DataError": "hardneg.core.errors",
    # data
    "load_data": "hardneg.data.load", "Corpus": "hardneg.data.types", "RetrievalData": "hardneg.data.types",
    "NegRow": "hardneg.data.negatives", "read_negatives": "hardneg.data.negatives",
    "write_negatives": "hardneg.data.negatives", "export_negatives": "hardneg.data.export",
    # encode
    "Encoder": "hardneg.encode.base", "load_encoder": "hardneg.encode.load", "encode_cached": "hardneg.encode.cache",
    # search / scale
    "AnnConfig": "hardneg.search.ann", "EngineConfig": "hardneg.scale.engine",
    # mining
    "Teacher": "hardneg.mining.candidates", "Candidates": "hardneg.mining.candidates",
    "load_teacher": "hardneg.mining.teachers.load", "MineConfig": "hardneg.mining.config",
    "MineResult": "hardneg.mining.mine", "mine": "hardneg.mining.mine",
    "mine_hard_negatives": "hardneg.compat.sentence_transformers",
    # training
    "TrainConfig": "hardneg.training.config", "Source": "hardneg.training.config", "train": "hardneg.training.trainer",
    "run_recipe": "hardneg.training.recipes",
    # evaluation
    "evaluate": "hardneg.evaluation.run", "EvalResult": "hardneg.evaluation.run",
    # analysis / experiment
    "paired_bootstrap": "hardneg.analysis.significance", "compare": "hardneg.analysis.compare",
    "inspect_negatives": "hardneg.analysis.negatives",
    "AblationConfig": "hardneg.experiment.config", "load_ablation_config": "hardneg.experiment.config",
    "run_ablation": "hardneg.experiment.grid",
}
_RENAMED = {"inspect_negatives": "inspect_rows", "load_ablation_config": "load_config"}

__all__ = sorted(_API) + ["__version__"]


def __getattr__(name: str):
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), _RENAMED.get(name, name))
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hardneg' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__


from hardneg import _legacy  # noqa: E402  (old module paths, for one release)

_legacy.install()
