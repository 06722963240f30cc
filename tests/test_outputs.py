"""The output guard (``core.outputs``) and data + meta committed as one unit (``core.provenance``).

Every refusal goes through ``cli.main`` on the tiny fixtures: exit 2, one ``error:`` line, and the
input file it would have destroyed unchanged, byte for byte.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hardneg.cli.main import main
from hardneg.core.errors import HardnegError
from hardneg.core.outputs import check_output, clean_stale_temps, lock_path, output_lock
from hardneg.core.provenance import is_committed, meta_path, read_meta, write_meta
from hardneg.data.negatives import read_negatives

ROW = {"qid": "q1", "pos_id": "d1", "pos_score": 0.9, "neg_ids": ["d3", "d2"], "neg_scores": [0.5, 0.4],
       "neg_teachers": ["t", "t"]}


def mine_args(data: Path, out, *extra: str) -> list[str]:
    return ["mine", "--teacher", "bm25", "--data", str(data), "--output", str(out), "--num-negatives", "2",
            "--method", "naive", *extra]


def refused(argv: list[str], capsys, *needles: str) -> str:
    """Run the CLI, expect exit 2 and a one-line ``error:`` naming ``needles``; return the line."""
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    for n in needles:
        assert n in err, err
    return err


@pytest.fixture
def neg(tmp_path) -> Path:
    p = tmp_path / "neg.jsonl"
    p.write_text(json.dumps(ROW) + "\n")
    return p


def _bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------ refusals
def test_mine_refuses_inputs_folders_devices_and_empty(tiny_beir, tmp_path, capsys):
    before = _bytes(tiny_beir)
    corpus = tiny_beir / "corpus.jsonl"
    refused(mine_args(tiny_beir, corpus), capsys, str(corpus), "is an input of this run")
    refused(mine_args(tiny_beir, tiny_beir / "qrels" / "train.tsv"), capsys, "is an input")
    link = tmp_path / "hard.jsonl"
    os.link(corpus, link)  # same inode under another name
    refused(mine_args(tiny_beir, link), capsys, str(link), "is an input")
    sym = tmp_path / "sym.jsonl"
    sym.symlink_to(tiny_beir / "queries.jsonl")
    refused(mine_args(tiny_beir, sym), capsys, "is an input")
    refused(mine_args(tiny_beir, tiny_beir), capsys, "is an input")  # the data folder itself
    refused(mine_args(tiny_beir, tmp_path), capsys, "is a folder, not a file")
    refused(mine_args(tiny_beir, ""), capsys, "--output is empty")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    refused(mine_args(tiny_beir, fifo), capsys, str(fifo), "is a fifo")
    if Path("/dev/null").exists():
        refused(mine_args(tiny_beir, "/dev/null"), capsys, "/dev/null is a character device")
        assert Path("/dev/null").is_char_device()
    (tmp_path / "afile").write_text("x")
    refused(mine_args(tiny_beir, tmp_path / "afile" / "neg.jsonl"), capsys, "cannot create folder")
    assert _bytes(tiny_beir) == before
    assert not (tmp_path / "afile").is_dir() and link.read_bytes() == corpus.read_bytes()


def test_export_refuses_the_meta_file_of_its_input(tiny_beir, tmp_path, capsys):
    # an input's meta is read too (data fingerprint, commit record): writing onto it is refused
    neg = tmp_path / "neg.jsonl"
    assert main(mine_args(tiny_beir, neg)) == 0
    before = neg.read_bytes(), meta_path(neg).read_bytes()
    refused(["export", str(neg), "--data", str(tiny_beir), "--format", "flagembedding", "--output",
             str(meta_path(neg))], capsys, "meta file of")
    assert (neg.read_bytes(), meta_path(neg).read_bytes()) == before


def test_parent_folder_is_created_before_the_work(tiny_beir, tmp_path):
    out = tmp_path / "new" / "deep" / "neg.jsonl"
    assert main(mine_args(tiny_beir, out)) == 0
    assert is_committed(out) and not lock_path(out).exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_refused_before_the_work(tiny_beir, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        refused(mine_args(tiny_beir, ro / "neg.jsonl"), capsys, "is not writable")
    finally:
        ro.chmod(0o700)


def test_export_and_inspect_refuse_their_negatives_file(tiny_beir, neg, tmp_path, capsys):
    before = neg.read_bytes()
    base = ["export", str(neg), "--data", str(tiny_beir), "--format", "flagembedding"]
    refused(base + ["--output", str(neg)], capsys, str(neg), "is an input")
    refused(base + ["--output", str(tiny_beir / "corpus.jsonl")], capsys, "a file of")
    refused(base + ["--output", str(tmp_path)], capsys, "is a folder")
    ins = ["inspect", str(neg), "--data", str(tiny_beir)]
    refused(ins + ["--plot", str(neg)], capsys, "--plot writes a PNG image")  # refused before it could touch neg
    refused(ins + ["--output", str(neg)], capsys, "--output", "is an input")
    png = tmp_path / "x.png"
    refused(ins + ["--plot", str(png), "--output", str(png)], capsys, "--plot and --output are the same file")
    assert neg.read_bytes() == before and not png.exists()


def test_evaluate_train_tune_compare_refuse(tiny_beir, tiny_model, neg, tmp_path, capsys):
    before, model_before = neg.read_bytes(), _bytes(tiny_model)
    ev = ["evaluate", "--model", str(tiny_model), "--data", str(tiny_beir), "--no-progress"]
    refused(ev + ["--output", str(tiny_beir / "queries.jsonl")], capsys, "is an input")
    refused(ev + ["--output", str(tiny_model / "config.json")], capsys, "a file of")
    tr = ["train", "--model", str(tiny_model), "--data", str(tiny_beir), "--negatives", str(neg)]
    refused(tr + ["--output", str(tiny_model)], capsys, str(tiny_model), "is an input")
    refused(tr + ["--output", str(neg)], capsys, "is an input")
    refused(tr + ["--output", str(tiny_beir / "qrels" / "test.tsv")], capsys, "is an input")
    (tmp_path / "afile").write_text("x")
    refused(tr + ["--output", str(tmp_path / "afile")], capsys, "is a file, not a folder")
    refused(["tune", "--teacher", "bm25", "--data", str(tiny_beir), "--output", str(tmp_path / "afile")],
            capsys, "is a file, not a folder")
    a = tmp_path / "a.per_query.json"
    a.write_text(json.dumps({"ndcg@10": {"q1": 1.0}}))
    b = tmp_path / "b.per_query.json"
    b.write_text(json.dumps({"ndcg@10": {"q1": 0.5}}))
    refused(["compare", str(a), str(b), "--json", str(b)], capsys, "--json", "is an input")
    assert neg.read_bytes() == before and _bytes(tiny_model) == model_before
    assert json.loads(b.read_text()) == {"ndcg@10": {"q1": 0.5}}


def test_train_and_ablate_refuse_a_foreign_folder_unless_forced(tiny_beir, tiny_model, neg, tmp_path, capsys):
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"\xff\xd8")
    tr = ["train", "--model", str(tiny_model), "--data", str(tiny_beir), "--output", str(foreign)]
    refused(tr + ["--negatives", str(neg)], capsys, "holds other files (cat.jpg)", "--force")
    # --force passes the guard: the next problem is the (missing) negatives file, not the folder
    err = refused(tr + ["--negatives", str(tmp_path / "missing.jsonl"), "--force"], capsys)
    assert "holds other files" not in err and "missing.jsonl" in err
    refused(["ablate", "--output", str(foreign)], capsys, "holds other files", "--force")
    refused(["ablate", "--output", str(neg)], capsys, "is a file, not a folder")
    assert (foreign / "cat.jpg").read_bytes() == b"\xff\xd8" and sorted(os.listdir(foreign)) == ["cat.jpg"]


def test_check_output_policies(tmp_path):
    out = tmp_path / "o.json"
    out.write_text("{}")
    assert check_output(out) == out  # overwrite: the default
    with pytest.raises(HardnegError, match="already exists: pass --force"):
        check_output(out, exists="refuse")
    assert check_output(out, exists="refuse", force=True) == out
    run = tmp_path / "run"
    run.mkdir()
    assert check_output(run, kind="dir", exists="ours", markers=("cells",)) == run  # empty folder
    (run / "x.txt").write_text("")
    with pytest.raises(HardnegError, match="holds other files"):
        check_output(run, kind="dir", exists="ours", markers=("cells",))
    (run / "cells").mkdir()
    assert check_output(run, kind="dir", exists="ours", markers=("cells",)) == run


# ---------------------------------------------------------------------------------------- lock
def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_second_acquirer_refuses_and_names_the_pid(tmp_path):
    out = tmp_path / "neg.jsonl"
    with output_lock(out) as lock:
        assert json.loads(lock.read_text())["pid"] == os.getpid()
        with pytest.raises(HardnegError, match=rf"pid {os.getpid()} on .*lock .*neg\.jsonl\.lock"):
            with output_lock(out):
                pass
    assert not lock.exists()  # released on exit


def test_cli_refuses_while_locked_and_takes_over_a_stale_lock(tiny_beir, tmp_path, capsys, caplog):
    out = tmp_path / "neg.jsonl"
    lock = lock_path(out)
    lock.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))  # a live run
    refused(mine_args(tiny_beir, out), capsys, str(lock), f"pid {os.getpid()}")
    assert not out.exists() and lock.exists()
    lock.write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname()}))
    assert main(mine_args(tiny_beir, out)) == 0
    assert "stale lock" in caplog.text and out.is_file() and not lock.exists()


def test_lock_of_another_host_is_never_taken_over(tmp_path):
    out = tmp_path / "neg.jsonl"
    lock_path(out).write_text(json.dumps({"pid": _dead_pid(), "host": "some-other-host"}))
    with pytest.raises(HardnegError, match="some-other-host.*delete the lock"):
        with output_lock(out):
            pass


def test_lock_released_when_the_run_fails(tiny_beir, tmp_path, capsys):
    out = tmp_path / "neg.jsonl"
    refused(mine_args(tiny_beir, out) + ["--num-negatives", "6"], capsys, "smaller than the corpus")
    assert not lock_path(out).exists()


# ------------------------------------------------------------------------- data + meta commit
def test_meta_commits_the_data_and_a_changed_file_reads_as_incomplete(tmp_path, neg):
    write_meta(neg, {"x": 1})
    meta = read_meta(neg)
    assert meta["committed"] == {"neg.jsonl": {"sha256": meta["committed"]["neg.jsonl"]["sha256"],
                                               "bytes": neg.stat().st_size}}
    assert is_committed(neg) and read_negatives(neg)
    neg.write_text(json.dumps({**ROW, "neg_ids": ["d2", "d3"]}) + "\n")  # same size, other bytes
    assert not is_committed(neg)
    with pytest.raises(HardnegError, match=r"neg\.jsonl was not completely written \(meta does not match"):
        read_negatives(neg)
    with pytest.raises(HardnegError, match="rerun the command"):
        read_meta(neg)
    assert read_meta(neg, verify=False)["config"] == {"x": 1}


def test_legacy_and_missing_meta(tmp_path, neg):
    assert not is_committed(neg) and read_meta(neg) is None  # no meta: not finished, still readable
    assert len(read_negatives(neg)) == 1
    meta_path(neg).write_text(json.dumps({"hardneg_version": "0", "config": {}}))  # before commit records
    assert is_committed(neg) and read_meta(neg)["config"] == {}
    assert not is_committed(tmp_path / "missing.jsonl")


def test_kill_between_data_and_meta_then_rerun(tiny_beir, tmp_path, capsys, monkeypatch):
    import hardneg.data.negatives as negatives_mod

    out = tmp_path / "neg.jsonl"
    assert main(mine_args(tiny_beir, out)) == 0
    first = out.read_bytes()

    def killed(*a, **k):
        raise KeyboardInterrupt("kill -9 between the data and the meta")

    monkeypatch.setattr(negatives_mod, "write_meta", killed)
    assert main(mine_args(tiny_beir, out)[:-4] + ["--num-negatives", "1", "--method", "naive"]) == 130
    assert out.read_bytes() != first  # new data beside the old meta
    assert not is_committed(out) and not lock_path(out).exists()
    refused(["export", str(out), "--data", str(tiny_beir), "--format", "flagembedding", "--output",
             str(tmp_path / "fe.jsonl")], capsys, "was not completely written (meta does not match", "rerun")
    refused(["inspect", str(out), "--data", str(tiny_beir)], capsys, "not completely written")
    monkeypatch.undo()
    assert main(mine_args(tiny_beir, out)[:-4] + ["--num-negatives", "1", "--method", "naive"]) == 0
    assert is_committed(out) and all(len(r.neg_ids) == 1 for r in read_negatives(out))
    assert main(["export", str(out), "--data", str(tiny_beir), "--format", "flagembedding", "--output",
                 str(tmp_path / "fe.jsonl")]) == 0


def test_audit_and_per_query_files_are_part_of_the_commit(tmp_path):
    data, side = tmp_path / "r.json", tmp_path / "r.per_query.json"
    data.write_text("{}")
    side.write_text('{"m": {}}')
    write_meta(data, {}, with_files=[side])
    assert set(read_meta(data)["committed"]) == {"r.json", "r.per_query.json"} and is_committed(data)
    side.write_text('{"m": {"q": 1}}')
    assert not is_committed(data)
    side.unlink()
    with pytest.raises(HardnegError, match="r.per_query.json is missing"):
        read_meta(data)


# --------------------------------------------------------------------------- stale temp files
def test_stale_temps_of_the_output_are_cleaned_on_the_next_write(tiny_beir, tmp_path):
    out = tmp_path / "neg.jsonl"
    old = time.time() - 3600
    ours = [tmp_path / ".neg.jsonl.ab12cd_9.tmp", tmp_path / ".neg.jsonl.meta.json.zz00yy11.tmp"]
    others = [tmp_path / ".other.jsonl.ab12cd_9.tmp", tmp_path / "neg.jsonl.tmp",
              tmp_path / ".neg.jsonl.notours.tmp", tmp_path / ".neg.jsonl2.ab12cd_9.tmp"]
    for p in ours + others:
        p.write_bytes(b"x" * 100)
        os.utime(p, (old, old))
    fresh = tmp_path / ".neg.jsonl.fresh000.tmp"  # younger than the run: another writer's, kept
    fresh.write_bytes(b"x")
    os.utime(fresh, (time.time() + 3600,) * 2)
    assert main(mine_args(tiny_beir, out)) == 0
    assert not any(p.exists() for p in ours)
    assert all(p.exists() for p in others) and fresh.exists()


def test_clean_stale_temps_in_a_run_folder(tmp_path):
    run = tmp_path / "run"
    (run / "cells").mkdir(parents=True)
    top, deep = run / ".results.json.abcdefgh.tmp", run / "cells" / ".c1.json.abcdefgh.tmp"
    for p in (top, deep):
        p.write_text("x")
    assert clean_stale_temps(run, before=time.time() + 1) == [top] and deep.exists()
    assert clean_stale_temps(run, before=time.time() + 1, recursive=True) == [deep]
