"""Training end to end on the tiny model: data -> columns, CLI, resume, recipes, decoder + LoRA."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hardneg.cli.main import main
from hardneg.core.errors import DataError, HardnegError
from hardneg.training.config import Source, TrainConfig
from hardneg.training.examples import build_examples
from hardneg.training.trainer import column_settings, is_finished, train

ROWS = [("q1", "d1", ["d3", "d5", "d2"]), ("q1", "d4", ["d3", "d6", "d2"]),
        ("q2", "d2", ["d6", "d1", "d3"]), ("q3", "d5", ["d3", "d4", "d2"])]


def write_negatives(path: Path, rows=ROWS) -> Path:
    with open(path, "w") as f:
        for q, p, n in rows:
            f.write(json.dumps({"qid": q, "pos_id": p, "pos_score": 0.9, "neg_ids": n,
                                "neg_scores": [0.5] * len(n), "neg_teachers": ["t"] * len(n)}) + "\n")
    return path


@pytest.fixture
def negs(tmp_path):
    return write_negatives(tmp_path / "neg.jsonl")


def _weights(path: Path) -> dict:
    from safetensors.numpy import load_file

    return load_file(str(path / "model.safetensors"))


def test_build_examples_texts_in_mined_order(tiny_beir, negs):
    cols, stats = build_examples(Source(str(tiny_beir), str(negs)), num_negatives=2)
    assert list(cols) == ["anchor", "positive", "negative_1", "negative_2"]
    assert cols["anchor"][2] == "where do dogs come from"
    assert cols["positive"][2].startswith("Dogs Dogs are loyal")
    assert cols["negative_1"][2].startswith("Wolves") and cols["negative_2"][2].startswith("Cats")
    assert stats["examples"] == 4 and stats["short_rows_dropped"] == 0


def test_short_rows_are_dropped_and_counted_or_refused(tiny_beir, tmp_path):
    path = write_negatives(tmp_path / "short.jsonl", ROWS[:3] + [("q3", "d5", ["d3"])])
    cols, stats = build_examples(Source(str(tiny_beir), str(path)), num_negatives=2)
    assert stats["short_rows_dropped"] == 1 and len(cols["anchor"]) == 3
    with pytest.raises(DataError, match="short.jsonl:4"):
        build_examples(Source(str(tiny_beir), str(path)), num_negatives=2, short_rows="error")


def test_unknown_ids_name_the_line(tiny_beir, tmp_path):
    path = write_negatives(tmp_path / "bad.jsonl", ROWS[:1] + [("q2", "d2", ["nope"])])
    with pytest.raises(DataError, match=r"bad.jsonl:2: document 'nope'"):
        build_examples(Source(str(tiny_beir), str(path)), num_negatives=1)


def test_config_validation():
    src = (Source("d", "n"),)
    with pytest.raises(HardnegError, match="in-batch"):
        TrainConfig("m", src, "o", num_negatives=0, in_batch_negatives=False)
    with pytest.raises(HardnegError):
        TrainConfig("m", src, "o", temperature=0)
    prompts, routes = column_settings(TrainConfig("m", src, "o", num_negatives=2, passage_prefix="p: "))
    assert prompts == {"positive": "p: ", "negative_1": "p: ", "negative_2": "p: "}
    assert routes["anchor"] == "query" and routes["negative_2"] == "document"


def test_cli_train_writes_loadable_model_and_meta(tiny_model, tiny_beir, negs, tmp_path):
    from sentence_transformers import SentenceTransformer

    out = tmp_path / "ft"
    rc = main(["train", "--model", str(tiny_model), "--data", str(tiny_beir), "--negatives", str(negs),
               "--output", str(out), "--num-negatives", "2", "--batch-size", "2", "--lr", "1e-3",
               "--query-prefix", "moon star ", "--query-max-length", "8", "--passage-max-length", "12",
               "--no-in-batch-negatives", "--mini-batch-size", "1", "--save-steps", "100"])
    assert rc == 0 and is_finished(out)
    meta = json.loads((out / "hardneg_train.meta.json").read_text())
    assert meta["steps"] == 2 and meta["examples"] == 4 and meta["final_loss"] is not None
    assert meta["data"][0]["negatives_sha256"] and meta["base_model_fingerprint"]
    model = SentenceTransformer(str(out))
    assert model.prompts["query"] == "moon star " and model[1].include_prompt is False
    # trained at q8/p12, saved with the base model's own inference lengths (training lengths are a cost)
    base = SentenceTransformer(str(tiny_model))
    assert (model.max_seq_length, model[0].query_length, model[0].document_length) == (
        base.max_seq_length, base[0].query_length, base[0].document_length)
    assert meta["config"]["query_max_length"] == 8 and meta["config"]["passage_max_length"] == 12
    before, after = _weights(Path(tiny_model)), _weights(out)
    assert any(not np.allclose(before[k], after[k]) for k in before)
    # a second run into the same folder is refused, not silently overwritten
    assert main(["train", "--model", str(tiny_model), "--data", str(tiny_beir), "--negatives", str(negs),
                 "--output", str(out)]) == 2


def test_resume_after_interruption_reproduces_uninterrupted_weights(tiny_model, tiny_beir, negs, tmp_path):
    from transformers import TrainerCallback

    class StopAt(TrainerCallback):
        def __init__(self, step):
            self.step = step

        def on_step_end(self, args, state, control, **kw):
            if state.global_step >= self.step:
                control.should_training_stop = True

    def cfg(out, **kw):
        return TrainConfig(str(tiny_model), (Source(str(tiny_beir), str(negs)),), str(out), num_negatives=1,
                           batch_size=2, epochs=2, save_steps=1, lr=1e-3, warmup=0, **kw)

    full = train(cfg(tmp_path / "full"))
    part = train(cfg(tmp_path / "part"), callbacks=[StopAt(2)])  # "killed" after 2 of 4 steps
    assert not is_finished(part) and (part / "checkpoints" / "checkpoint-2").is_dir()
    with pytest.raises(HardnegError, match="--resume"):
        train(cfg(tmp_path / "part"))
    resumed = train(cfg(tmp_path / "part", resume=True))
    meta = json.loads((resumed / "hardneg_train.meta.json").read_text())
    assert meta["resumed_from"] == "checkpoint-2" and meta["steps"] == 4
    a, b = _weights(full), _weights(resumed)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], atol=1e-6, rtol=0)


def test_two_stage_recipe_second_stage_starts_from_first(tiny_model, tiny_beir, negs, tmp_path, monkeypatch):
    from hardneg.training.recipes import load_recipe, run_recipe

    recipe = tmp_path / "r.toml"
    recipe.write_text(f"""
model = "{tiny_model}"
output = "{tmp_path / 'runs'}"
[defaults]
batch_size = 2
lr = 1e-3
sources = [{{ data = "{tiny_beir}", negatives = "{negs}" }}]
[[stage]]
name = "a"
num_negatives = 1
[[stage]]
name = "b"
num_negatives = 2
in_batch_negatives = false
max_steps = 1
""")
    _, stages = load_recipe(recipe)
    assert stages[1].model == stages[0].output and stages[1].num_negatives == 2
    out = run_recipe(recipe)
    assert out == Path(stages[1].output) and is_finished(out)
    meta = json.loads((out / "hardneg_train.meta.json").read_text())
    assert meta["steps"] == 1 and meta["config"]["model"] == stages[0].output
    assert run_recipe(recipe, resume=True) == out  # both finished: nothing retrained
    bad = tmp_path / "bad.toml"
    bad.write_text(recipe.read_text().replace("num_negatives = 1", "num_negatve = 1"))
    with pytest.raises(DataError, match="unknown key"):
        load_recipe(bad)


def test_an_ablation_recipe_given_to_train_names_the_right_command(capsys):
    assert main(["train", "--config", "ablation-quick"]) == 2
    assert "'hardneg ablate --config quick'" in capsys.readouterr().err
    assert main(["train", "--config", "quick"]) == 2
    assert "'hardneg ablate --config quick'" in capsys.readouterr().err


def test_packaged_recipes_parse():
    from hardneg.training.recipes import load_recipe, packaged

    assert {"cpu-small", "nv-retriever-v1"} <= set(packaged())
    _, nv = load_recipe("nv-retriever-v1")
    assert [s.num_negatives for s in nv] == [1, 5] and nv[0].in_batch_negatives
    assert (nv[0].lora_r, nv[0].lora_alpha, nv[0].lr, nv[0].warmup) == (16, 32, 1e-5, 100)
    assert (nv[0].query_max_length, nv[0].passage_max_length) == (192, 512)


def test_decoder_with_lora_trains_end_to_end(tiny_beir, negs, tmp_path):
    from sentence_transformers import SentenceTransformer
    from test_decoder import build_tiny_decoder

    base = build_tiny_decoder(tmp_path / "llama")
    out = train(TrainConfig(str(base), (Source(str(tiny_beir), str(negs)),), str(tmp_path / "ft"),
                            num_negatives=1, batch_size=2, max_steps=2, lr=1e-2, lora_r=4, lora_alpha=8,
                            query_prefix="instruct : "))
    model = SentenceTransformer(str(out))
    assert not (out / "adapter_config.json").exists()  # merged
    assert model[0].auto_model.config.is_causal is False
    assert model.encode_query(["what is a cat"]).shape == (1, 32)


@pytest.mark.slow
def test_minilm_on_scifact_subset_trains_and_loss_falls(tmp_path):
    """Real data: BM25 PercPos negatives, 64 SciFact training rows, MiniLM, 8 steps (minutes on CPU)."""
    from conftest import SHARED_DATA

    scifact = SHARED_DATA / "scifact"
    if not scifact.is_dir():
        pytest.skip(f"real data not found at {scifact}")
    negs = tmp_path / "neg.jsonl"
    assert main(["mine", "--teacher", "bm25", "--data", str(scifact), "--split", "train",
                 "--num-negatives", "1", "--output", str(negs)]) == 0
    out = train(TrainConfig("minilm", (Source(str(scifact), str(negs), "train", 64),), str(tmp_path / "ft"),
                            num_negatives=1, batch_size=8, epochs=1, lr=5e-5, logging_steps=1, save_steps=100))
    log = json.loads((out / "loss_log.json").read_text())
    assert len(log) == 8
    assert np.mean([h["loss"] for h in log[-3:]]) < np.mean([h["loss"] for h in log[:3]])


def test_relabelled_rows_codes_and_the_no_consumer_error(tiny_beir, tmp_path):
    from hardneg.core.errors import HardnegError
    from hardneg.training.examples import Codes

    path = tmp_path / "neg.jsonl"
    path.write_text('{"qid": "q1", "pos_id": "d1", "pos_score": 0.9, "neg_ids": ["d2"], "neg_scores": [0.5], '
                    '"neg_teachers": ["t"], "relabeled": ["d4"]}\n'
                    '{"qid": "q2", "pos_id": "d2", "pos_score": 0.8, "neg_ids": ["d3"], "neg_scores": [0.4], '
                    '"neg_teachers": ["t"]}\n')
    codes = Codes()
    cols, stats = build_examples(Source(str(tiny_beir), str(path)), num_negatives=1, codes=codes)
    assert stats["relabeled_rows_added"] == 1 and stats["examples"] == 3
    # rows: (q1, d1), (q1, d4 relabelled, d1's negatives), (q2, d2); codes = [query, positive, negative]
    ids = ["d1", "d2", "d3", "d4", "d5", "d6"]
    assert [[q, ids[p], ids[n]] for q, p, n in cols["label"]] == [[0, "d1", "d2"], [0, "d4", "d2"], [1, "d2", "d3"]]
    assert {q: [ids[d] for d in v] for q, v in codes.known.items()} == {0: ["d1", "d4"], 1: ["d2"]}
    with pytest.raises(HardnegError, match="nothing in this run would use them"):
        build_examples(Source(str(tiny_beir), str(path)), num_negatives=1, relabeled_rows=False)


def test_bf16_trains_on_cpu_with_autocast_and_saves_fp32_weights(tiny_model, tiny_beir, negs, tmp_path,
                                                                   monkeypatch, caplog):
    """--precision bf16 on a machine without a GPU is CPU autocast (it used to stop in TrainingArguments),
    with a warning where the CPU lacks bf16 instructions; fp16 there is a clear error."""
    import logging

    from safetensors.numpy import load_file

    import hardneg.training.trainer as trainer

    monkeypatch.setattr(trainer, "cpu_has_bf16", lambda: False)

    out = tmp_path / "bf16"
    base = ["train", "--model", str(tiny_model), "--data", str(tiny_beir), "--negatives", str(negs),
            "--num-negatives", "1", "--batch-size", "2", "--lr", "1e-3", "--max-steps", "2"]
    with caplog.at_level(logging.WARNING, "hardneg.training.trainer"):
        assert main([*base, "--output", str(out), "--precision", "bf16"]) == 0 and is_finished(out)
    assert "without bf16 instructions" in caplog.text
    weights = load_file(str(next(out.rglob("model.safetensors"))))
    assert {str(w.dtype) for w in weights.values()} == {"float32"}
    assert main([*base, "--output", str(tmp_path / "fp16"), "--precision", "fp16"]) == 2


def test_short_rows_pad_keeps_every_row_and_codes_the_empty_slots(tiny_beir, tmp_path):
    from hardneg.training.examples import PAD_CODE, Codes, DistillSettings

    path = write_negatives(tmp_path / "short.jsonl", ROWS[:3] + [("q3", "d5", ["d3"]), ("q2", "d2", [])])
    codes = Codes()
    cols, stats = build_examples(Source(str(tiny_beir), str(path)), num_negatives=2, short_rows="pad", codes=codes,
                                 distill=DistillSettings())
    assert stats["short_rows_padded"] == 2 and stats["short_rows_dropped"] == 0 and len(cols["anchor"]) == 5
    assert cols["negative_2"][3] == cols["anchor"][3] and cols["negative_1"][4] == cols["anchor"][4]  # the query
    assert cols["negative_1"][3] != cols["anchor"][3]
    codes_of = [row[:4] for row in cols["label"]]
    assert codes_of[3][3] == PAD_CODE and codes_of[3][2] >= 0 and codes_of[4][2:] == [PAD_CODE, PAD_CODE]
    assert all(c >= 0 for row in codes_of[:3] for c in row)
    assert [row[-3:] for row in cols["label"][3:]] == [[1, 1, 0], [1, 0, 0]]  # no teacher score on a padded slot
    with pytest.raises(HardnegError, match="needs the positives mask"):
        build_examples(Source(str(tiny_beir), str(path)), num_negatives=2, short_rows="pad")
    for bad in ({"mask_positives": False}, {"in_batch_negatives": False}, {"mini_batch_size": 2}):
        with pytest.raises(HardnegError, match="--short-rows pad needs"):
            TrainConfig("m", (Source("d", "n"),), "o", num_negatives=2, short_rows="pad", **bad)


def test_short_rows_pad_trains_end_to_end_and_records_the_padding(tiny_beir, tiny_model, tmp_path):
    path = write_negatives(tmp_path / "short.jsonl", ROWS[:3] + [("q3", "d5", ["d3"])])
    out = train(TrainConfig(str(tiny_model), (Source(str(tiny_beir), str(path)),), str(tmp_path / "m"),
                            num_negatives=2, short_rows="pad", batch_size=1, epochs=1, query_max_length=16,
                            passage_max_length=32, seed=0))
    meta = json.loads((Path(out) / "hardneg_train.meta.json").read_text())
    assert meta["examples"] == 4 and meta["data"][0]["short_rows_padded"] == 1
    assert meta["steps"] == 4 and meta["positives_mask"]["padded_slots"] == 1  # batches of one row: one padded slot
