"""The ablation grid: config parsing, cell planning, end to end on tiny data, resume, report files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hardneg.cli.main import main
from hardneg.core.errors import DataError, HardnegError
from hardneg.experiment.config import AblationConfig, TrainSettings, load_config, method_settings
from hardneg.experiment.grid import peer_can_mine, plan_cells, run_ablation
from hardneg.experiment.stages import Stages, subset_queries


def test_method_settings():
    assert method_settings("percpos:0.95") == {"method": "percpos", "perc": 0.95}
    assert method_settings("abs:0.7") == {"method": "abs", "max_score": 0.7}
    for bad in ("topk", "percpos", "naive:3", "shifted:x"):
        with pytest.raises(HardnegError):
            method_settings(bad)


@pytest.mark.parametrize("name", ["quick", "quick-sparse", "scifact", "teachers", "nfcorpus-sparse"])
def test_builtin_recipes_load(name):
    cfg = load_config(name)
    sparse = name.endswith("sparse")
    assert cfg.data == ("nfcorpus" if sparse else "scifact") and cfg.student == "minilm"
    assert "naive" in cfg.methods or name == "teachers"
    # the sparse recipes promise exact numbers: fp32 throughout; the SciFact ones trade int8 for speed
    assert cfg.eval_backend == ("torch" if sparse else "onnx-int8") and (cfg.labels == "sparse") == sparse


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[1] / "src/hardneg/recipes").glob("ablation-*.toml")),
                         ids=lambda p: p.stem)
def test_every_builtin_ablation_recipe_loads_and_plans(path):
    cfg = load_config(path.stem.removeprefix("ablation-"))
    cells = plan_cells(cfg)
    assert cells and len({c.id for c in cells}) == len(cells)
    assert all(c.teacher is None or c.kind != "peer" or peer_can_mine(c.teacher) for c in cells)


def test_quick_and_full_recipes_have_the_promised_grid():
    quick, full = load_config("quick"), load_config("scifact")
    assert quick.methods == ("naive", "percpos:0.95") and quick.seeds == (0,) and quick.references == ("base",)
    assert len(plan_cells(quick)) == 3
    assert full.methods == ("naive", "shifted:10", "abs:0.7", "marginpos:0.05", "percpos:0.95")
    assert len(full.seeds) == 2 and full.fn_probe_data == "msmarco-nano"
    kinds = [c.kind for c in plan_cells(full)]
    assert kinds.count("base") == 1 and kinds.count("method") == 10 and kinds.count("fn_probe") == 5
    assert kinds.count("random") == kinds.count("inbatch") == 2


def test_config_errors_name_file_and_line(tmp_path):
    p = tmp_path / "a.toml"
    p.write_text('[ablation]\ndata = "x"\nmethodz = ["naive"]\n')
    with pytest.raises(DataError, match=r"a\.toml:3: unknown key 'methodz'.*methods"):
        load_config(p)
    p.write_text('[ablation]\nmethods = ["topk"]\n')
    with pytest.raises(HardnegError, match="unknown mining method 'topk'"):
        load_config(p)
    p.write_text('[trian]\nepochs = 1\n')
    with pytest.raises(DataError, match=r":1: unknown section \[trian\]"):
        load_config(p)
    with pytest.raises(DataError, match="ablation recipe not found.*quick, quick-sparse, scifact, scifact-training, teachers"):
        load_config("nope")
    with pytest.raises(HardnegError, match="'cpu-small' is a packaged train recipe.*'hardneg train --config cpu-small'"):
        load_config("cpu-small")


def test_overrides_and_cell_ids():
    cfg = load_config("quick", seeds=(0, 1), train={"epochs": 2.0, "lr": None})
    assert cfg.seeds == (0, 1) and cfg.train.epochs == 2.0 and cfg.train.lr == 2e-5
    a, b = plan_cells(cfg), plan_cells(cfg)
    assert [c.id for c in a] == [c.id for c in b] and len({c.id for c in a}) == len(a) == 5
    other = plan_cells(load_config("quick", seeds=(0, 1), train={"epochs": 3.0}))
    # the untrained base does not depend on training settings; every trained cell does
    assert a[0].id == other[0].id and not {c.id for c in a[1:]} & {c.id for c in other[1:]}
    assert plan_cells(cfg, data_fp="x")[0].id != a[0].id


def test_subset_queries_is_seeded_and_sized(tiny_beir):
    from hardneg.data.beir import load_beir

    d = load_beir(tiny_beir, "train")
    s1, s2 = subset_queries(d, 2), subset_queries(d, 2)
    assert list(s1.qrels) == list(s2.qrels) and len(s1.qrels) == 2
    assert subset_queries(d, None) is d


def _tiny_config(tiny_beir: Path, tiny_model: Path, tmp_path: Path, **kw) -> AblationConfig:
    args = dict(data=str(tiny_beir), student=str(tiny_model), teachers=(str(tiny_model),),
                methods=("naive", "percpos:0.95"), references=("base", "random", "inbatch"), seeds=(0,),
                num_negatives=1, depth=5, fn_probe_data=str(tiny_beir), fn_probe_split="test",
                train=TrainSettings(epochs=1, batch_size=2, lr=1e-2, query_max_length=16, passage_max_length=32),
                cache_dir=str(tmp_path / "cache"))
    args.update(kw)
    return AblationConfig(**args)


class CountingStages(Stages):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.calls = {"mine": 0, "train": 0, "evaluate": 0, "probe": 0}

    def mine(self, *a, **kw):
        self.calls["mine"] += 1
        return super().mine(*a, **kw)

    def train(self, *a, **kw):
        self.calls["train"] += 1
        return super().train(*a, **kw)

    def evaluate(self, *a, **kw):
        self.calls["evaluate"] += 1
        return super().evaluate(*a, **kw)

    def probe(self, *a, **kw):
        self.calls["probe"] += 1
        return super().probe(*a, **kw)


def test_grid_end_to_end_then_resume(tiny_beir, tiny_model, tmp_path):
    cfg = _tiny_config(tiny_beir, tiny_model, tmp_path)
    out = tmp_path / "run"
    st = CountingStages(cfg, out, progress=False)
    res = run_ablation(cfg, out, stages=st, progress=False)
    # base + random + inbatch + 2 methods evaluated; 4 trained; 3 mined; 2 probes
    assert st.calls == {"mine": 3, "train": 4, "evaluate": 5, "probe": 2}
    cells = {(c["kind"], c["row"]): c for c in res["cells"]}
    assert len(res["cells"]) == 7
    for key in [("base", "base"), ("random", "naive"), ("inbatch", "inbatch"), ("method", "percpos:0.95")]:
        assert 0.0 <= cells[key]["metrics"]["ndcg@10"] <= 1.0 and set(cells[key]["per_query"]["ndcg@10"]) == {"q1", "q2", "q3"}
    # the evaluated model is the trained one, not the base (lr 1e-2 moves a random tiny model)
    assert any(c["per_query"] != cells[("base", "base")]["per_query"] for c in res["cells"][1:] if "per_query" in c)
    assert cells[("inbatch", "inbatch")]["train"]["examples"] == 4 and cells[("inbatch", "inbatch")]["train"]["steps"] == 2
    naive = cells[("method", "naive")]
    assert naive["mining"]["summary"]["rows"] == 4 and naive["mining"]["summary"]["mean_negatives"] == 1.0
    probe = cells[("fn_probe", "naive")]
    # test qrels: q1 has positives d1 (anchor) and d4 (hidden); q2, q3 have one positive each
    assert probe["fn"]["queries"] == 3 and probe["fn"]["negatives"] == 3
    assert probe["fn"]["false_negatives"] in (0, 1)
    assert not list((out / "work").rglob("model.safetensors"))  # trained models removed after evaluation
    report = (out / "report.md").read_text()
    assert "| base (untrained) |" in report and "| in-batch only |" in report and "| random negatives |" in report
    assert {Path(p).name for p in res["plots"]} >= {"methods.png", "score_hist.png", "fn_rate.png"}
    assert json.loads((out / "results.json").read_text())["cells"][0]["kind"] == "base"
    assert (out / "results.json.meta.json").is_file()

    again = CountingStages(cfg, out, progress=False)
    res2 = run_ablation(cfg, out, stages=again, progress=False, plots=False)
    assert again.calls == {"mine": 0, "train": 0, "evaluate": 0, "probe": 0}
    assert res2["cells"] == json.loads(json.dumps(res["cells"]))

    for kind in ("base", "fn_probe"):  # as if the run had died before finishing these cells
        lost = next(c for c in res["cells"] if c["kind"] == kind)
        (out / "cells" / f"{lost['id']}.json").unlink()
    third = CountingStages(cfg, out, progress=False)
    res3 = run_ablation(cfg, out, stages=third, progress=False, plots=False)
    assert third.calls == {"mine": 0, "train": 0, "evaluate": 1, "probe": 1}
    strip = lambda cells: [{k: v for k, v in c.items() if k != "seconds"} for c in cells]  # noqa: E731
    assert strip(res3["cells"]) == strip(res2["cells"])  # recomputed cells are deterministic


def test_cli_dry_run_and_report_only(tiny_beir, tiny_model, tmp_path, capsys):
    p = tmp_path / "grid.toml"
    p.write_text(f'[ablation]\ndata = "{tiny_beir}"\nstudent = "{tiny_model}"\nteachers = ["{tiny_model}"]\n'
                 f'methods = []\nreferences = ["base"]\nnum_negatives = 1\ndepth = 5\n'
                 f'cache_dir = "{tmp_path / "cache"}"\n[train]\nbatch_size = 2\npassage_max_length = 32\n')
    out = tmp_path / "run"
    assert main(["ablate", "--config", str(p), "--output", str(out), "--dry-run"]) == 0
    assert "0/1 cells done" in capsys.readouterr().out
    assert main(["ablate", "--config", str(p), "--output", str(out), "--quiet", "--no-plots"]) == 0
    printed = capsys.readouterr().out
    assert "| base (untrained) |" in printed and "report:" in printed
    assert main(["ablate", "--config", str(p), "--output", str(out), "--dry-run"]) == 0
    assert "1/1 cells done" in capsys.readouterr().out
    assert main(["ablate", "--output", str(tmp_path / "none"), "--report-only"]) == 2
    # a partial report from the finished cells of a bigger grid (the base cell is done, the random one is not)
    p.write_text(p.read_text().replace('references = ["base"]', 'references = ["base", "random"]'))
    assert main(["ablate", "--config", str(p), "--output", str(out), "--report-only", "--partial", "--no-plots"]) == 0
    assert "1 of 2 cells finished" in capsys.readouterr().out
    assert "not yet run: random naive" in (out / "report.md").read_text()


def test_probe_only_plans_only_probes():
    cfg = load_config("scifact", probe_only=True)
    cells = plan_cells(cfg)
    assert [c.row for c in cells] == list(cfg.methods) and {c.kind for c in cells} == {"fn_probe"}
    with pytest.raises(HardnegError, match="probe_only needs fn_probe_data"):
        load_config("quick", probe_only=True)


@pytest.mark.slow
def test_false_negative_probe_on_msmarco_nano(tmp_path):
    """Real data (minutes): with only one of ~95 judged positives known, naive top-k mining picks
    judged-relevant passages as negatives; PercPos 95% picks fewer of them."""
    from conftest import SHARED_DATA

    if not (SHARED_DATA / "msmarco-nano").is_dir():
        pytest.skip(f"{SHARED_DATA / 'msmarco-nano'} not found")
    cfg = load_config("scifact", probe_only=True, methods=("naive", "percpos:0.95"),
                      fn_probe_data=str(SHARED_DATA / "msmarco-nano"))
    res = run_ablation(cfg, tmp_path / "run", progress=False, plots=False)
    fn = {c["row"]: c["fn"] for c in res["cells"]}
    assert fn["naive"]["queries"] == 43 and fn["naive"]["negatives"] == 43 * 4
    assert fn["naive"]["rate"] > 0.1
    assert fn["percpos:0.95"]["rate"] < fn["naive"]["rate"]


def test_killed_after_training_does_not_retrain(tiny_beir, tiny_model, tmp_path):
    cfg = _tiny_config(tiny_beir, tiny_model, tmp_path, fn_probe_data=None)
    st = Stages(cfg, tmp_path / "run", progress=False)
    model = st.train(None, 0, "inbatch-x")  # in-batch only: a pairs file, no negatives
    weights = next(model.rglob("model.safetensors"))
    stamp = weights.stat().st_mtime_ns
    assert st.train(None, 0, "inbatch-x") == model  # finished run found: returned as is
    assert weights.stat().st_mtime_ns == stamp and st.train_info(model)["steps"] == 2


def test_sparse_labels_hide_all_but_the_anchor_and_judge_the_negatives(tiny_beir, tiny_model, tmp_path):
    cfg = _tiny_config(tiny_beir, tiny_model, tmp_path, labels="sparse", references=("base",),
                       methods=("naive",), fn_probe_data=None, num_negatives=3)
    st = Stages(cfg, tmp_path / "run", progress=False)
    assert st.train_data.qrels["q1"] == {"d1": 1} and st.hidden["q1"] == {"d4": 1}
    res = run_ablation(cfg, tmp_path / "run", progress=False, plots=False)
    method = next(c for c in res["cells"] if c["kind"] == "method")
    # q1's naive negatives (3 of the 5 other passages) are judged against the hidden d4
    assert method["fn"]["queries"] == 3 and method["fn"]["negatives"] == 9
    rows = [r for r in read_negatives_rows(tmp_path / "run", method["id"])]
    assert method["fn"]["false_negatives"] == sum("d4" in r.neg_ids for r in rows if r.qid == "q1")
    assert all(r.pos_id == {"q1": "d1", "q2": "d2", "q3": "d5"}[r.qid] for r in rows)  # anchors only
    assert "False negatives" in (tmp_path / "run" / "report.md").read_text()


def read_negatives_rows(run, cell_id):
    from hardneg.data.negatives import read_negatives

    return read_negatives(run / "work" / cell_id / "negatives.jsonl")


def test_sparse_labels_change_only_trained_cell_ids():
    full, sparse = plan_cells(load_config("quick")), plan_cells(load_config("quick", labels="sparse"))
    assert full[0].id == sparse[0].id and not {c.id for c in full[1:]} & {c.id for c in sparse[1:]}
    cfg = load_config("nfcorpus-sparse")
    assert cfg.labels == "sparse" and cfg.data == "nfcorpus" and len(cfg.seeds) >= 3 and cfg.eval_backend == "torch"
    with pytest.raises(HardnegError, match="labels must be one of"):
        load_config("quick", labels="few")


def test_sparse_judge_relabel_and_peer_rows(tiny_beir, tiny_model, tmp_path):
    """+judge / +relabel rows run the agreement judge with BM25 voting and record its held-out quality;
    the relabel row trains on the flagged passages as extra positives; the peer row is mined by
    sentence-transformers' own mine_hard_negatives and trained with the mask off (plain MNRL)."""
    from hardneg.experiment.grid import plan_cells

    cfg = _tiny_config(tiny_beir, tiny_model, tmp_path, labels="sparse", references=("base", "peer"),
                       methods=("naive+judge", "naive+relabel"), fn_probe_data=None, num_negatives=1,
                       judge_voters=("bm25",), judge_frac=1.0, peer_relative_margin=0.0)
    kinds = [(c.kind, c.row) for c in plan_cells(cfg)]
    assert kinds == [("base", "base"), ("peer", "st-mine relative_margin=0"), ("method", "naive+judge"),
                     ("method", "naive+relabel")]
    res = run_ablation(cfg, tmp_path / "run", progress=False, plots=False)
    cells = {c["row"]: c for c in res["cells"]}
    judged, relabel = cells["naive+judge"], cells["naive+relabel"]
    assert judged["judge"]["voters"] == ["bm25"] and judged["judge"]["action"] == "remove"
    assert set(judged["judge"]["held_out"]) >= {"precision", "recall"}  # measured against the hidden d4
    assert relabel["judge"]["action"] == "relabel" and relabel["judge"]["relabeled"] == relabel["judge"]["flagged"] or \
        relabel["judge"]["relabeled"] <= relabel["judge"]["flagged"]
    rows = read_negatives_rows(tmp_path / "run", relabel["id"])
    extra = sum(len(r.relabeled) for r in rows)
    assert extra == relabel["judge"]["relabeled"]
    assert all(not set(r.relabeled) & set(r.neg_ids) for r in rows)
    full = sum(len(r.neg_ids) >= 1 for r in rows)
    assert relabel["train"]["data"][0]["relabeled_rows_added"] == sum(len(r.relabeled) for r in rows if r.neg_ids)
    assert relabel["train"]["examples"] == full + relabel["train"]["data"][0]["relabeled_rows_added"]
    assert relabel["train"]["positives_mask"]["rows"] > 0  # rows the masked loss saw (no-duplicate batches may skip some)
    peer = cells["st-mine relative_margin=0"]
    assert peer["kind"] == "peer" and peer["train"]["positives_mask"] is None and "fn" in peer
    assert peer["mining"]["stats"]["pairs"] == 3
    report = (tmp_path / "run" / "report.md").read_text()
    assert "naive+relabel" in report and "mine_hard_negatives" in report


def test_probe_cells_run_the_judge_of_a_judge_row(tiny_beir, tiny_model, tmp_path):
    cfg = _tiny_config(tiny_beir, tiny_model, tmp_path, probe_only=True, methods=("naive", "naive+judge"),
                       judge_voters=("bm25",), judge_frac=0.9)
    res = run_ablation(cfg, tmp_path / "run", progress=False, plots=False)
    plain, judged = (next(c for c in res["cells"] if c["row"] == r) for r in ("naive", "naive+judge"))
    assert "judge" not in plain and judged["judge"]["voters"] == ["bm25"]
    assert judged["fn"]["false_negatives"] <= plain["fn"]["false_negatives"]  # the judge only removes
    assert set(judged["judge"]["held_out"]) >= {"precision", "recall"}


def test_row_variants_parse_and_plan_training_and_selection_settings():
    from hardneg.experiment.config import row_parts, train_variant

    assert row_parts("percpos:0.95+judge+simans+kl") == ("percpos:0.95", ("judge", "simans", "kl"))
    assert row_parts("percpos:0.95+deepen+kl") == ("percpos:0.95", ("deepen", "kl"))
    assert train_variant("percpos:0.95+refresh+bucket", 0.25) == {"refresh_every": 0.25, "bucket_batches": True}
    assert train_variant("naive+kl-only", 0.5) == {"distill": "kl", "distill_only": True}
    for bad, msg in [("percpos:0.95+kl+margin-mse", "choose one"), ("naive+judge+relabel", "choose one"),
                     ("naive+kl+kl-only", "choose one"),
                     ("naive+kl+kl", "repeated"), ("naive+klx", "unknown method variant 'klx'")]:
        with pytest.raises(HardnegError, match=msg):
            row_parts(bad)
    cfg = load_config("quick", methods=("percpos:0.95", "percpos:0.95+simans", "percpos:0.95+kl",
                                        "percpos:0.95+margin-mse+bucket"), refresh_every=0.5)
    cells = {c.row: c for c in plan_cells(cfg) if c.kind == "method"}
    plain = cells["percpos:0.95"]
    assert "train_extra" not in plain.spec and plain.spec["mine"]["selection"] == "top"
    assert cells["percpos:0.95+simans"].spec["mine"]["selection"] == "simans"
    assert "train_extra" not in cells["percpos:0.95+simans"].spec
    assert cells["percpos:0.95+kl"].spec["train_extra"] == {"distill": "kl"}
    assert cells["percpos:0.95+margin-mse+bucket"].spec["train_extra"] == {"distill": "margin-mse",
                                                                          "bucket_batches": True}
    assert len({c.id for c in cells.values()}) == 4


def test_rows_without_variants_keep_their_cell_ids():
    # ids of the 3-seed NFCorpus study as planned before row variants existed (data fingerprint "fp"):
    # adding variants must not invalidate finished cells of older runs
    ids = [c.id for c in plan_cells(load_config("nfcorpus-sparse"), data_fp="fp")]
    assert ids[:5] == ["base-2151e9c1c2e7", "peer-a1c342eeced9", "peer-a159dfc76a8a", "peer-5b34f5a8acdf",
                       "method-3c99b0dfba02"]
    assert ids[-1] == "method-d05b1598ff95" and len(ids) == 19


def test_a_bucket_and_simans_row_trains_end_to_end(tiny_beir, tiny_model, tmp_path):
    cfg = _tiny_config(tiny_beir, tiny_model, tmp_path, methods=("naive+simans+bucket",), references=(),
                       fn_probe_data=None)
    res = run_ablation(cfg, tmp_path / "run", progress=False, plots=False)
    (cell,) = res["cells"]
    assert cell["spec"]["mine"]["selection"] == "simans" and cell["spec"]["train_extra"] == {"bucket_batches": True}
    assert cell["train"]["steps"] >= 1 and 0.0 <= cell["metrics"]["ndcg@10"] <= 1.0


def test_a_deepen_row_fills_the_rows_its_plain_twin_leaves_short(tiny_beir, tiny_model, tmp_path):
    # at depth 5 of the 6-passage corpus the random model's percpos leaves 3 of 4 rows short; "+deepen"
    # re-searches them over the whole corpus
    cfg = _tiny_config(tiny_beir, tiny_model, tmp_path, methods=("percpos:0.95", "percpos:0.95+deepen"),
                       references=(), fn_probe_data=None, depth=5, num_negatives=1)
    res = run_ablation(cfg, tmp_path / "run", progress=False, plots=False)
    plain, deep = (next(c for c in res["cells"] if c["row"] == r) for r in ("percpos:0.95", "percpos:0.95+deepen"))
    assert deep["spec"]["mine"]["on_shortfall"] == "deepen" and "on_shortfall" not in plain["spec"]["mine"]
    short = lambda c: c["mining"]["summary"]["short_rows"]  # noqa: E731
    assert short(plain) == 3 and short(deep) < short(plain)
    assert deep["mining"]["stats"]["shortfall"]["max_depth"] == 6 and deep["train"]["steps"] >= 1


def test_a_refresh_row_remines_with_the_student_and_records_the_rounds(tiny_beir, tiny_model, tmp_path):
    cfg = _tiny_config(tiny_beir, tiny_model, tmp_path, methods=("naive+refresh",), references=(),
                       fn_probe_data=None, labels="sparse", refresh_every=0.5, cache_dir=str(tmp_path / "cache"))
    res = run_ablation(cfg, tmp_path / "run", progress=False, plots=False)
    (cell,) = res["cells"]
    assert cell["spec"]["train_extra"] == {"refresh_every": 0.5}
    rounds = cell["train"]["refresh"]["rounds"]
    assert len(rounds) >= 1 and rounds[0]["rows"] == cell["mining"]["summary"]["rows"]
    assert rounds[0]["fn"] is not None  # sparse labels: the held-out judgements measure each round


def test_training_recipe_shares_its_reference_cells_with_the_sparse_study():
    sparse = {(c.kind, c.row, c.seed): c.id for c in plan_cells(load_config("nfcorpus-sparse"), data_fp="fp")}
    training = plan_cells(load_config("nfcorpus-training"), data_fp="fp")
    shared = [c for c in training if sparse.get((c.kind, c.row, c.seed)) == c.id]
    assert {(c.kind, c.row) for c in shared} == {("base", "base"), ("peer", "st-mine relative_margin=0.05"),
                                                 ("method", "percpos:0.95")}
    assert len(shared) == 7 and len(training) == 19


def test_train_precision_bf16_reaches_every_trained_row_the_peer_included(tiny_beir, tiny_model, tmp_path):
    """[train] precision = "bf16" trains every row (peer too) under bf16 autocast; fp32 keeps the ids of before."""
    import dataclasses as dc

    from hardneg.core.files import read_json
    from hardneg.training.config import META_NAME

    base = _tiny_config(tiny_beir, tiny_model, tmp_path, references=("base", "peer"), methods=("naive", "naive+bf16"),
                        fn_probe_data=None, peer_relative_margin=0.0, keep_models=True)
    bf16 = dc.replace(base, train=dc.replace(base.train, precision="bf16"))
    fp32 = dc.replace(base, train=dc.replace(base.train, precision="fp32"))
    ids = {name: [c.id for c in plan_cells(cfg, data_fp="fp")] for name, cfg in
           (("base", base), ("fp32", fp32), ("bf16", bf16))}
    assert ids["fp32"] == ids["base"]
    assert ids["bf16"][0] == ids["base"][0] and not set(ids["bf16"][1:]) & set(ids["base"][1:])
    assert "bf16 autocast" in " ".join(bf16.describe())
    res = run_ablation(bf16, tmp_path / "run", progress=False, plots=False)
    trained = [c for c in res["cells"] if c["kind"] != "base"]
    assert [c["row"] for c in trained] == ["st-mine relative_margin=0", "naive", "naive+bf16"]
    for cell in trained:  # the peer, a plain row and a "+bf16" row (the same setting twice is fine)
        meta = read_json(tmp_path / "run" / "work" / cell["id"] / "model" / f"{META_NAME}.meta.json")
        assert meta["config"]["precision"] == "bf16", cell["row"]
    with pytest.raises(HardnegError, match="train.precision must be fp32 or bf16"):
        TrainSettings(precision="fp16")
