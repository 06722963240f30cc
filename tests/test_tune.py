"""``hardneg tune``: sweep mining settings on held-out positives, measure, recommend — on a planted answer.

Planted data (depth 5, n = 2). q1's qrels list h1a (grade 1) before a1 (grade 2): the anchor is the
best-graded a1, not the first. Held-out positives score just below the anchor (1.0):

    q1: a1 1.0 | h1a .955  h1b .935 | n1 .905  n2 .775          (top 5 of its row)
    q2: a2 1.0 | h2a .965           | n1 .865  n2 .765  n3 .665
    q3: one positive only -> not a tuning query

So, per setting (FN = held-out positives among the 4 negatives; full = rows with 2):
    naive, percpos .97/.99/1.0   h1a h1b | h2a n1   FN 3/4    full 2
    percpos .95                  h1b n1  | n1 n2    FN 1/4    full 2   neg-pos -0.1325
    percpos .92                  n1 n2   | n1 n2    FN 0      full 2   neg-pos -0.1725
    percpos .90/.85/.80          n2      | n? n?    FN 0      full 1
"""

from __future__ import annotations

import json

import pytest

from conftest import write_beir
from fakes import TableTeacher
from hardneg.analysis.tune import format_table, recommend
from hardneg.cli.main import main
from hardneg.core.errors import HardnegError
from hardneg.data.types import Corpus, RetrievalData
from hardneg.experiment.tune import TuneConfig, default_settings, parse_setting, tune, tuning_split

IDS = ["a1", "h1a", "h1b", "a2", "h2a", "a3", "n1", "n2", "n3"]
QIDS = ["q1", "q2", "q3"]
TABLE = [  # rows: q1, q2, q3; columns: IDS
    [1.0, .955, .935, .1, .1, .1, .905, .775, .3],
    [.1, .1, .1, 1.0, .965, .1, .865, .765, .665],
    [.2, .2, .2, .2, .2, 1.0, .5, .4, .3],
]
QRELS = [("q1", "h1a", 1), ("q1", "a1", 2), ("q1", "h1b", 1), ("q2", "a2", 1), ("q2", "h2a", 1), ("q3", "a3", 1)]
PERCS = "naive,percpos:0.8,percpos:0.85,percpos:0.9,percpos:0.92,percpos:0.95,percpos:0.97,percpos:0.99,percpos:1.0"


def planted() -> RetrievalData:
    qrels: dict = {}
    for q, d, g in QRELS:
        qrels.setdefault(q, {})[d] = g
    return RetrievalData(Corpus(IDS, [""] * len(IDS), [f"text {d}" for d in IDS]), {q: q for q in QIDS}, qrels, "train")


def cfg(**kw) -> TuneConfig:
    return TuneConfig(**{"teacher": ("fake",), "data": "planted", "num_negatives": 2, "depth": 5, **kw})


def by_setting(result) -> dict:
    return {r["setting"]: r for r in result.settings}


def test_anchor_is_the_best_graded_positive_and_only_multi_positive_queries_tune():
    split = tuning_split(planted())
    assert split.qids == ["q1", "q2"]
    assert list(split.data.qrels["q1"]) == ["a1", "h1a", "h1b"]  # anchor first, so anchor_only mines it
    assert split.hidden == {"q1": {"h1a": 1, "h1b": 1}, "q2": {"h2a": 1}}
    assert tuning_split(planted(), max_queries=1).qids in (["q1"], ["q2"])


def test_planted_fn_rates_yields_and_recommendation():
    teacher = TableTeacher(QIDS, TABLE)
    res = tune(planted(), [teacher], cfg(methods=(PERCS,)))
    assert teacher.depths == [5]  # the pool is fetched once for the whole sweep
    r = by_setting(res)
    for s in ("naive", "percpos:0.97", "percpos:0.99", "percpos:1.0"):
        assert (r[s]["fn_rate"], r[s]["false_negatives"], r[s]["full_rows"]) == (0.75, 3, 2)
    assert (r["percpos:0.95"]["fn_rate"], r["percpos:0.95"]["full_rows"]) == (0.25, 2)
    assert (r["percpos:0.92"]["fn_rate"], r["percpos:0.92"]["full_rows"]) == (0.0, 2)
    for s in ("percpos:0.9", "percpos:0.85", "percpos:0.8"):
        assert (r[s]["fn_rate"], r[s]["full_rows"], r[s]["yield"]) == (0.0, 1, 0.5)
    assert r["percpos:0.95"]["hardness"] == pytest.approx(-0.1325, abs=1e-6)
    assert r["percpos:0.92"]["hardness"] == pytest.approx(-0.1725, abs=1e-6)
    assert res.queries == 2 and res.held_out == 3
    rec = res.recommendation
    assert rec["met"] and rec["setting"] == "percpos:0.92"  # default target 0.2
    assert rec["command"].endswith("--method percpos --perc 0.92 --num-negatives 2 --depth 5")
    assert "--anchor-only" not in rec["command"]
    # a looser target: .95 ties .92 on full rows and has the harder negatives
    assert recommend(res.settings, 0.3)["setting"] == "percpos:0.95"
    assert recommend(res.settings, 0.0)["setting"] == "percpos:0.92"
    table = format_table(res.settings, rec["index"])
    assert len(table.splitlines()) == 1 + len(res.settings)
    assert [ln for ln in table.splitlines() if ln.startswith("*")][0].split()[1] == "percpos:0.92"


def test_default_sweep_covers_every_family_and_agrees_with_the_planted_answer():
    res = tune(planted(), [TableTeacher(QIDS, TABLE)], cfg())
    labels = [r["setting"] for r in res.settings]
    assert labels[:9] == PERCS.split(",")
    assert labels[9:13] == ["marginpos:0.0", "marginpos:0.02", "marginpos:0.05", "marginpos:0.1"]
    assert [lb.split(":")[0] for lb in labels[13:]] == ["abs"] * len(labels[13:]) and labels[13:]
    assert not any("agreement" in lb for lb in labels)  # one teacher: no judge
    r = by_setting(res)
    assert r["marginpos:0.05"]["fn_rate"] == 0.25 and r["marginpos:0.0"]["fn_rate"] == 0.75
    assert res.recommendation["setting"] == "percpos:0.92"


def test_agreement_judge_with_two_teachers_reports_flags_and_held_out_quality():
    teachers = [TableTeacher(QIDS, TABLE, "t1"), TableTeacher(QIDS, TABLE, "t2")]
    res = tune(planted(), teachers, cfg(teacher=("t1", "t2"), methods=("percpos:0.95+agreement:0.9",)))
    (r,) = res.settings
    # survivors of percpos .95 that score >= 0.9 x the anchor: h1b (held out) and n1 of q1
    assert r["judge"]["flagged"] == 2 and r["judge"]["precision"] == 0.5 and r["judge"]["recall"] == 1.0
    assert r["fn_rate"] == 0.0
    assert "--judge agreement --judge-frac 0.9 --judge-min-votes 1" in res.recommendation["command"]
    assert "agreement" in format_table(res.settings).splitlines()[1]
    pools = [t.candidates(planted(), ["q1", "q2"], 5) for t in teachers]
    judged = [s.label for s in default_settings(pools) if "agreement" in s.label]
    assert judged == [f"percpos:0.95+agreement:{f}" for f in ("0.8", "0.85", "0.9", "0.95", "1.0")]


def test_no_setting_meets_the_target_recommends_the_lowest_fn_rate():
    res = tune(planted(), [TableTeacher(QIDS, TABLE)], cfg(methods=("naive,percpos:0.99,percpos:0.95",),
                                                           max_fn_rate=0.1))
    rec = res.recommendation
    assert not rec["met"] and rec["setting"] == "percpos:0.95"
    assert "no setting reaches" in rec["reason"]


@pytest.mark.parametrize("bad", [-0.01, 1.5, float("nan")])
def test_max_fn_rate_outside_0_1_is_refused(bad):
    with pytest.raises(HardnegError, match="max-fn-rate"):
        cfg(max_fn_rate=bad)


def test_bad_specs_and_judge_without_a_second_teacher_are_refused():
    with pytest.raises(HardnegError, match="needs a setting"):
        cfg(methods=("percpos",))
    with pytest.raises(HardnegError, match="agreement"):
        cfg(methods=("percpos:0.95+agreement:0.9",))
    with pytest.raises(HardnegError, match="agreement:FRAC"):
        parse_setting("percpos:0.95+cross:1")


def test_no_query_with_two_positives_is_a_clear_error():
    d = planted()
    d.qrels = {"q3": {"a3": 1}, "q1": {"a1": 1, "h1a": 0}}  # grade 0 is not a positive
    with pytest.raises(HardnegError, match="two or more positives"):
        tune(d, [TableTeacher(QIDS, TABLE)], cfg())


def test_cli_prints_the_table_and_writes_tune_json_and_png(tmp_path, monkeypatch, capsys):
    import hardneg.mining.teachers.load as load

    corpus = [{"_id": d, "title": "", "text": f"text {d}"} for d in IDS]
    folder = write_beir(tmp_path / "planted", corpus, [{"_id": q, "text": q} for q in QIDS], {"train": QRELS})
    monkeypatch.setattr(load, "load_teacher", lambda spec, settings=None, **kw: TableTeacher(QIDS, TABLE, spec))
    out = tmp_path / "tune"
    rc = main(["tune", "--teacher", "fake", "--data", str(folder), "--depth", "5", "--num-negatives", "2",
               "--cache-dir", str(tmp_path / "cache"), "--output", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0
    assert "recommended: percpos:0.92" in printed and "hardneg mine --teacher fake" in printed
    report = json.loads((out / "tune.json").read_text())
    assert report["recommendation"]["setting"] == "percpos:0.92" and report["queries"] == 2
    meta = json.loads((out / "tune.json.meta.json").read_text())
    assert meta["config"]["max_fn_rate"] == 0.2 and meta["config"]["teacher"] == ["fake"]
    assert (out / "tune.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["tune", "--teacher", "fake", "--data", str(folder), "--max-fn-rate", "2"]) == 2
    assert "error: --max-fn-rate must be in [0, 1]" in capsys.readouterr().err


def test_help_states_every_default(capsys):
    with pytest.raises(SystemExit):
        main(["tune", "--help"])
    text = capsys.readouterr().out
    for flag in ("--max-fn-rate", "--num-negatives", "--depth", "--methods", "--max-queries", "--backend"):
        assert flag in text
    assert text.count("(default:") >= 10  # every option with a default says it
