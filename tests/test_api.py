"""The public API: lazy verbs and types on ``import hardneg``, the README's pipeline example run on
the tiny fixtures, old module paths importing with a DeprecationWarning."""

import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import hardneg as hn

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    block = text.split("## As a library", 1)[1]
    return re.search(r"```python\n(.*?)```", block, re.S).group(1)


def test_every_public_name_resolves():
    for name in hn.__all__:
        assert getattr(hn, name) is not None, name
    assert callable(hn.mine) and callable(hn.train) and callable(hn.evaluate)
    with pytest.raises(AttributeError):
        hn.no_such_thing  # noqa: B018


def test_import_is_lazy():
    code = "import sys, hardneg; print(sorted(m for m in ('torch', 'numpy', 'sentence_transformers', 'faiss') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_readme_pipeline_runs(tiny_beir, tiny_model, tmp_path, monkeypatch):
    code = readme_example()
    assert len(code.strip().splitlines()) <= 6  # data -> mine -> train -> evaluate in five lines
    code = code.replace('"scifact"', repr(str(tiny_beir))).replace('"minilm"', repr(str(tiny_model)))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARDNEG_CACHE", str(tmp_path / "cache"))
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)  # noqa: S102 - the README's own example
    rows = hn.read_negatives(tmp_path / "runs" / "neg.jsonl")
    assert rows and all(len(r.neg_ids) <= 1 for r in rows) and any(r.neg_ids for r in rows)
    assert (tmp_path / "runs" / "ft" / "hardneg_train.meta.json").is_file()


def test_old_module_paths_warn_and_still_work():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from hardneg.io import atomic_open  # noqa: F401
        from hardneg.shards import search_shards
        from hardneg.teachers import load_teacher  # noqa: F401
    assert any(issubclass(w.category, DeprecationWarning) and "hardneg.teachers" in str(w.message) for w in caught)
    from hardneg.search.blocks import search_blocks

    assert search_shards is search_blocks


def test_old_train_module_does_not_shadow_the_verb():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import hardneg.train as old
    from hardneg.training.trainer import train

    assert old.TrainConfig is hn.TrainConfig
    assert hn.train is train or callable(hn.train)
