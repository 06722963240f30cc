"""Disk full and permission errors (issue 13): a clear one-line error (``HardnegError``, exit 2) that
says what to free or fix, and where, and keeps what was already computed (the pool cache of a mine
run, finished embedding-cache chunks, finished ablation cells), so the rerun continues.

ENOSPC is simulated by making the fsync (every atomic write's last step) of the named file fail;
EACCES by a read-only folder, or, as root (where chmod does not stop writes), by a failing rename
or mkdir.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from fakes import RowEncoder
from hardneg.cli.main import main
from hardneg.core.errors import HardnegError
from hardneg.core.files import WriteError, write_json
from hardneg.encode.cache import cached_encode

ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _fd_path(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


def fail_writes(monkeypatch, match: str, code: int = errno.ENOSPC, after: int = 0) -> list[str]:
    """Make the atomic write of files whose temporary name holds ``match`` fail with ``code`` (after
    ``after`` successful ones); returns the list of paths that failed."""
    real = os.fsync
    failed: list[str] = []
    seen = [0]

    def fsync(fd):
        path = _fd_path(fd)
        if match in Path(path).name:
            seen[0] += 1
            if seen[0] > after:
                failed.append(path)
                raise OSError(code, os.strerror(code))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return failed


def leftovers(folder: Path) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.name.endswith((".tmp", ".lock"))]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def mine_argv(data: Path, out: Path, cache: Path) -> list[str]:
    return ["mine", "--teacher", "bm25", "--data", str(data), "--output", str(out), "--num-negatives", "2",
            "--method", "naive", "--cache-dir", str(cache)]


# ----------------------------------------------------------------------------------- an output
def test_disk_full_while_writing_the_output_keeps_the_pool_and_says_what_to_free(tiny_beir, tmp_path, monkeypatch, capsys):
    out, cache = tmp_path / "out" / "neg.jsonl", tmp_path / "cache"
    failed = fail_writes(monkeypatch, ".neg.jsonl.")
    assert main(mine_argv(tiny_beir, out, cache)) == 2
    err = one_error_line(capsys)
    assert failed and f"cannot write {out}" in err and "No space left on device" in err
    assert "is full" in err and "MiB free" in err and str(out.parent) in err and "rerun" in err
    assert not out.exists() and not leftovers(tmp_path)  # no half file, no temporary, no lock
    pools = sorted((cache / "pools").glob("*.npz"))
    assert pools  # the teacher's pool was computed before the failure and is kept
    stamp = pools[0].stat().st_mtime_ns
    monkeypatch.undo()
    assert main(mine_argv(tiny_beir, out, cache)) == 0
    assert pools[0].stat().st_mtime_ns == stamp  # the rerun reused it
    assert main(mine_argv(tiny_beir, tmp_path / "fresh.jsonl", tmp_path / "c2")) == 0
    assert out.read_bytes() == (tmp_path / "fresh.jsonl").read_bytes()


def test_disk_full_while_writing_the_meta_leaves_no_committed_output(tiny_beir, tmp_path, monkeypatch, capsys):
    from hardneg.core.provenance import is_committed

    out = tmp_path / "neg.jsonl"
    fail_writes(monkeypatch, ".neg.jsonl.meta.json.")
    assert main(mine_argv(tiny_beir, out, tmp_path / "cache")) == 2
    assert "neg.jsonl.meta.json" in one_error_line(capsys)
    assert not is_committed(out) and not leftovers(tmp_path)


def test_permission_denied_on_the_output(tiny_beir, tmp_path, monkeypatch, capsys):
    """A read-only output folder is refused before any work (the guard's probe); as root a failing
    rename stands in for it, and the error comes at the write, just as clear."""
    folder = tmp_path / "ro"
    folder.mkdir()
    out = folder / "neg.jsonl"
    if not ROOT:
        folder.chmod(0o500)
        try:
            assert main(mine_argv(tiny_beir, out, tmp_path / "cache")) == 2
            assert "not writable" in one_error_line(capsys)
        finally:
            folder.chmod(0o700)
        return
    real = os.replace

    def replace(src, dst, *a, **kw):
        if Path(dst) == out:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return real(src, dst, *a, **kw)

    monkeypatch.setattr(os, "replace", replace)
    assert main(mine_argv(tiny_beir, out, tmp_path / "cache")) == 2
    err = one_error_line(capsys)
    assert "Permission denied" in err and f"{folder} is not writable by this user" in err
    assert not out.exists() and not leftovers(tmp_path)


def test_other_os_errors_are_not_rewritten(tmp_path, monkeypatch):
    """Only user-fixable errnos become a WriteError; e.g. EIO stays the OSError it is."""
    fail_writes(monkeypatch, ".x.json.", code=errno.EIO)
    with pytest.raises(OSError) as e:
        write_json(tmp_path / "x.json", {})
    assert not isinstance(e.value, HardnegError) and e.value.errno == errno.EIO


def test_write_error_is_still_an_oserror(tmp_path, monkeypatch):
    """Code that tolerates a failed cache write (``except OSError``) keeps doing so."""
    fail_writes(monkeypatch, ".x.json.")
    with pytest.raises(OSError) as e:
        write_json(tmp_path / "x.json", {})
    assert isinstance(e.value, WriteError) and isinstance(e.value, HardnegError) and e.value.errno == errno.ENOSPC


# ---------------------------------------------------------------------------- the embedding cache
def test_disk_full_in_the_embedding_cache_keeps_finished_chunks(tmp_path, monkeypatch):
    texts = [str(i) for i in range(10)]
    enc = RowEncoder(seed=1)
    entry = tmp_path / "cache" / "entry"
    fail_writes(monkeypatch, ".chunk4_", after=2)  # chunks 0 and 1 saved, chunk 2 hits the full disk
    with pytest.raises(HardnegError) as e:
        cached_encode(enc.encode_passages, texts, entry, info={"kind": "passage"}, chunk_size=4, progress=False)
    msg = str(e.value)
    assert "No space left on device" in msg and "2 of 3 chunks" in msg and str(entry) in msg
    assert "--cache-dir" in msg and "HARDNEG_CACHE" in msg and "\n" not in msg
    assert sorted(p.name for p in entry.iterdir()) == ["chunk4_00000.npy", "chunk4_00001.npy"]
    monkeypatch.undo()
    again = RowEncoder(seed=1)
    arr = cached_encode(again.encode_passages, texts, entry, info={"kind": "passage"}, chunk_size=4, progress=False)
    assert again.calls == [["8", "9"]]  # only the chunk that was lost is encoded again
    np.testing.assert_array_equal(arr, enc.table[:10])


def test_unwritable_cache_folder_is_a_clear_error(tmp_path, monkeypatch):
    texts = ["0", "1"]
    base = tmp_path / "ro"
    base.mkdir()
    if not ROOT:
        base.chmod(0o500)
    else:
        real = Path.mkdir

        def mkdir(self, *a, **kw):
            if base in self.parents:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
            return real(self, *a, **kw)

        monkeypatch.setattr(Path, "mkdir", mkdir)
    try:
        with pytest.raises(HardnegError, match=r"not writable by this user.*--cache-dir DIR or set \$HARDNEG_CACHE"):
            cached_encode(RowEncoder().encode_passages, texts, base / "entry", info={}, chunk_size=4, progress=False)
    finally:
        base.chmod(0o700)


# ---------------------------------------------------------------------------------- ablate cells
class FakeStages:
    """Stand-in for ``experiment.stages.Stages``: no model, fixed metrics, counts the cells it runs."""

    def __init__(self, cfg, work: Path):
        self.cfg, self.work, self.ran = cfg, work, []

    def data_fingerprint(self):
        return "data-fp"

    def probe_fingerprint(self):
        return ""

    def mine(self, teacher, method, seed, cell_id, **kw):
        self.ran.append(cell_id)
        return None, [{"pos_score": 0.9, "neg_scores": [0.5]}], {}

    def train(self, negatives, seed, cell_id, **kw):
        model = self.work / cell_id
        model.mkdir(parents=True, exist_ok=True)
        return model

    def train_info(self, model):
        return {"steps": 1}

    def evaluate(self, model, **kw):
        class Ev:
            metrics = {"ndcg@10": 0.5}
            per_query = {"ndcg@10": {"q1": 0.5}}
        return Ev()


def test_disk_full_in_an_ablation_cell_keeps_finished_cells(tmp_path, monkeypatch):
    from hardneg.experiment.config import AblationConfig
    from hardneg.experiment.grid import plan_cells, run_ablation

    cfg = AblationConfig(data="tiny", student="s", teachers=("bm25",), methods=("naive", "percpos:0.95"),
                         references=("base",), seeds=(0,), num_negatives=1, fn_probe_data=None)
    out = tmp_path / "run"
    cells = plan_cells(cfg, "data-fp", "")
    assert len(cells) == 3
    fail_writes(monkeypatch, f".{cells[2].id}.json.")
    st = FakeStages(cfg, tmp_path / "work")
    with pytest.raises(HardnegError) as e:
        run_ablation(cfg, out, stages=st, progress=False, plots=False)
    assert "No space left on device" in str(e.value) and str(out / "cells") in str(e.value)
    assert sorted(p.stem for p in (out / "cells").glob("*.json")) == sorted(c.id for c in cells[:2])
    assert not leftovers(out)
    monkeypatch.undo()
    again = FakeStages(cfg, tmp_path / "work")
    res = run_ablation(cfg, out, stages=again, progress=False, plots=False)
    assert again.ran == [cells[2].id] and len(res["cells"]) == 3  # only the lost cell ran again
