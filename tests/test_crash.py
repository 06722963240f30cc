"""kill -9 anywhere, then rerun: the rerun finishes and writes what an uninterrupted run writes (issue 13).

Each trial forks the test process (no interpreter start-up, so a delay lands in the work, not in the
imports), runs the command in the child and SIGKILLs it: at a named point
(``HARDNEG_TEST_KILL_AT``, ``hardneg.core.testhooks``; the points of an uninterrupted run are listed
first through ``HARDNEG_TEST_KILL_LOG``, then the child is killed at each one) or after a seeded
delay. Then the same command runs again in a fresh child, without the hook, and its outputs are
compared with the reference run's: the data files byte for byte, metas by their commit record and
stats (times differ); training weights within the resume tolerance of tests/test_train.py (1e-6).
No temporary file and no lock may be left. The default suite tries a seeded sample of the points;
``-m slow`` tries every point and more delays.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from hardneg.core.testhooks import ENV, LOG_ENV

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
CHILD_TIMEOUT_S = 120
RESULTS: dict[str, list[int]] = {}  # scenario -> [kill points tried, differences]; printed by the slow test


def forked(fn, *, env: dict | None = None, kill_after: float | None = None, log: Path | None = None) -> int:
    """Run ``fn()`` (returns an exit code) in a forked child; returns its wait status. With
    ``kill_after``, SIGKILL it after that many seconds (if still running)."""
    err = tempfile.NamedTemporaryFile(prefix="crash-child-", suffix=".err", delete=False)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        code = 3
        try:
            # the parent's OpenMP pool does not survive fork: torch must run single-threaded in the child
            # (load_encoder sets torch's threads to the cores this process may use: one)
            if hasattr(os, "sched_setaffinity"):
                os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
            if "torch" in sys.modules:
                sys.modules["torch"].set_num_threads(1)
            os.environ.update(env or {})
            if log is not None:
                os.environ[LOG_ENV] = str(log)
            fd = os.open(os.devnull, os.O_WRONLY)
            os.dup2(fd, 1)
            os.dup2(err.fileno(), 2)
            import faulthandler

            faulthandler.dump_traceback_later(CHILD_TIMEOUT_S, exit=True)  # a hung child says where, then exits
            code = int(fn() or 0)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 3
        except BaseException:  # noqa: BLE001 - reported through the exit code and the .err file
            import traceback

            traceback.print_exc()
            code = 3
        finally:
            sys.stderr.flush()
            os._exit(code)
    if kill_after is not None:
        deadline = time.monotonic() + kill_after
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.005)
        else:
            os.kill(pid, signal.SIGKILL)
            status = os.waitpid(pid, 0)[1]
    else:
        status = os.waitpid(pid, 0)[1]
    forked.last_err = Path(err.name).read_text(errors="replace")[-3000:]
    os.unlink(err.name)
    return status


def exit_code(status: int) -> int:
    return os.waitstatus_to_exitcode(status)


def cli(argv: list[str]):
    def fn():
        from hardneg.cli.main import main

        return main(argv)
    return fn


def points_of(fn, tmp: Path) -> list[str]:
    """The kill specs of every point an uninterrupted run of ``fn`` reaches (``NAME:DETAIL#N``)."""
    log = tmp / "points.log"
    status = forked(fn, log=log)
    assert exit_code(status) == 0, forked.last_err
    seen: dict[str, int] = {}
    specs = []
    for line in log.read_text().splitlines():
        seen[line] = seen.get(line, 0) + 1
        specs.append(f"{line}#{seen[line]}")
    return specs


def leftovers(folder: Path) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.name.endswith((".tmp", ".lock"))]


def age_leftovers(*folders: Path, seconds: float = 3600) -> None:
    """Make a killed run's temporary files look old, as they are by the time anyone reruns: the
    next write of the same file removes a temporary untouched for ``core.files.STALE_TMP_S``."""
    for folder in folders:
        for p in folder.rglob("*.tmp"):
            st = p.stat()
            os.utime(p, (st.st_atime - seconds, st.st_mtime - seconds))


def sample(specs: list[str], k: int | None, seed: int = 13) -> list[str]:
    if k is None or k >= len(specs):
        return specs
    return sorted(random.Random(seed).sample(specs, k), key=specs.index)


def _meta_core(path: Path) -> dict:
    meta = json.loads(path.read_text())
    return {k: meta.get(k) for k in ("committed", "stats", "config", "teachers", "data_fingerprint")}


# ------------------------------------------------------------------------------------------ mine
def _mine_trials(tiny_beir: Path, tmp: Path, teacher: str, k: int | None, delays: list[float]) -> tuple[int, int]:
    def argv(out: Path, cache: Path) -> list[str]:
        return ["mine", "--teacher", teacher, "--data", str(tiny_beir), "--output", str(out / "neg.jsonl"),
                "--num-negatives", "2", "--method", "naive", "--cache-dir", str(cache)]

    ref = tmp / "ref"
    specs = points_of(cli(argv(ref, tmp / "ref-cache")), tmp)
    assert any(s.startswith("atomic.replaced:neg.jsonl#") for s in specs) and any("mine.query" in s for s in specs)
    want = (ref / "neg.jsonl").read_bytes()
    tried = diffs = 0
    trials = [("point", s) for s in sample(specs, k)] + [("delay", d) for d in delays]
    for i, (how, what) in enumerate(trials):
        out, cache = tmp / f"t{i}", tmp / f"c{i}"
        if how == "point":
            status = forked(cli(argv(out, cache)), env={ENV: what})
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (what, forked.last_err)
        else:
            forked(cli(argv(out, cache)), kill_after=what)
        age_leftovers(out, cache)
        status = forked(cli(argv(out, cache)))  # the rerun, same output and cache
        assert exit_code(status) == 0, (how, what, forked.last_err)
        tried += 1
        same = ((out / "neg.jsonl").read_bytes() == want
                and _meta_core(out / "neg.jsonl.meta.json") == _meta_core(ref / "neg.jsonl.meta.json"))
        diffs += not same
        assert same, f"rerun after a kill at {how} {what} differs from the uninterrupted run"
        assert not leftovers(out) and not leftovers(cache), (what, leftovers(out), leftovers(cache))
    return tried, diffs


def _warm(teacher: str = "bm25") -> None:
    """Import what the children run, once in the parent (a fork then starts with it loaded)."""
    from hardneg.cli.main import build_parser
    import hardneg.cli.mine, hardneg.data.load, hardneg.mining.mine, hardneg.mining.teachers.load  # noqa: E401,F401
    import hardneg.mining.teachers.bm25, hardneg.mining.teachers.dense, hardneg.mining.teachers.judge  # noqa: E401,F401
    import bm25s  # noqa: F401

    build_parser(["mine"])


def test_mine_bm25_killed_at_named_points_and_delays(tiny_beir, tmp_path):
    _warm()
    tried, diffs = _mine_trials(tiny_beir, tmp_path, "bm25", k=8, delays=[0.01, 0.03, 0.08])
    RESULTS["mine bm25"] = [tried, diffs]


def test_mine_dense_killed_at_named_points(tiny_beir, tiny_model, tmp_path):
    import sentence_transformers  # noqa: F401 - imported once here, not in every child

    tried, diffs = _mine_trials(tiny_beir, tmp_path, str(tiny_model), k=6, delays=[0.2])
    RESULTS["mine dense"] = [tried, diffs]


@pytest.mark.slow
def test_mine_every_point_and_more_delays(tiny_beir, tiny_model, tmp_path):
    rng = random.Random(7)
    for teacher in ("bm25", str(tiny_model)):
        tried, diffs = _mine_trials(tiny_beir, tmp_path / Path(teacher).name, teacher, k=None,
                                    delays=sorted(rng.uniform(0.0, 1.5) for _ in range(10)))
        RESULTS[f"mine {Path(teacher).name} (all)"] = [tried, diffs]


# --------------------------------------------------------------------------------- sharded encode
def _shard_trials(tmp: Path, k: int | None) -> tuple[int, int]:
    from fakes import RowEncoder
    from hardneg.scale.shards import encode_sharded

    texts = [str(i) for i in range(23)]

    def run(out: Path):
        def fn():
            encode_sharded(RowEncoder(seed=3), texts, out, shard_size=5, progress=False)
            return 0
        return fn

    ref = tmp / "ref"
    specs = points_of(run(ref), tmp)
    assert sum(s.startswith("shards.shard:") for s in specs) == 5
    want = {p.name: p.read_bytes() for p in sorted(ref.iterdir())}
    tried = diffs = 0
    for i, spec in enumerate(sample(specs, k)):
        out = tmp / f"t{i}"
        status = forked(run(out), env={ENV: spec})
        assert os.WIFSIGNALED(status), (spec, forked.last_err)
        age_leftovers(out)
        assert exit_code(forked(run(out))) == 0, forked.last_err
        got = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
        tried += 1
        diffs += got != want
        assert got == want, f"shards after a kill at {spec} differ"
    return tried, diffs


def test_sharded_encode_killed_at_named_points(tmp_path):
    RESULTS["sharded encode"] = list(_shard_trials(tmp_path, k=6))


@pytest.mark.slow
def test_sharded_encode_every_point(tmp_path):
    RESULTS["sharded encode (all)"] = list(_shard_trials(tmp_path, k=None))


# ------------------------------------------------------------------------------------------ train
NEG_ROWS = [("q1", "d1", ["d3", "d5"]), ("q1", "d4", ["d3", "d6"]), ("q2", "d2", ["d6", "d1"]), ("q3", "d5", ["d3", "d4"])]


def _train_setup(tmp: Path, tiny_beir: Path, tiny_model: Path):
    neg = tmp / "neg.jsonl"
    neg.write_text("".join(json.dumps({"qid": q, "pos_id": p, "pos_score": 0.9, "neg_ids": n, "neg_scores": [0.5] * 2,
                                       "neg_teachers": ["t"] * 2}) + "\n" for q, p, n in NEG_ROWS))

    def argv(out: Path, resume: bool) -> list[str]:
        return ["train", "--model", str(tiny_model), "--data", str(tiny_beir), "--negatives", str(neg),
                "--output", str(out), "--num-negatives", "1", "--batch-size", "2", "--epochs", "2",
                "--save-steps", "1", "--lr", "1e-3", "--warmup", "0", *(["--resume"] if resume else [])]
    return argv


def _weights(folder: Path) -> dict:
    from safetensors.numpy import load_file

    return load_file(str(folder / "model.safetensors"))


def _train_trials(tmp: Path, tiny_beir: Path, tiny_model: Path, delays: list[float], k: int | None) -> tuple[int, int]:
    argv = _train_setup(tmp, tiny_beir, tiny_model)
    ref = tmp / "ref"
    t0 = time.monotonic()
    specs = points_of(cli(argv(ref, False)), tmp)
    took = time.monotonic() - t0
    want = _weights(ref)
    trials = [("point", s) for s in sample([s for s in specs if s.startswith("atomic.")], k)]
    trials += [("delay", d * took) for d in delays]  # delays as fractions of an uninterrupted run
    tried = diffs = 0
    for i, (how, what) in enumerate(trials):
        out = tmp / f"t{i}"
        if how == "point":
            forked(cli(argv(out, False)), env={ENV: what})
        else:
            forked(cli(argv(out, False)), kill_after=what)
        age_leftovers(out)
        status = forked(cli(argv(out, True)))
        assert exit_code(status) == 0, (how, what, forked.last_err)
        got = _weights(out)
        tried += 1
        same = got.keys() == want.keys() and all(np.allclose(got[n], want[n], atol=1e-6, rtol=0) for n in want)
        diffs += not same
        assert same, f"weights after a kill at {how} {what} and --resume differ from the uninterrupted run"
        assert not leftovers(out), leftovers(out)
    return tried, diffs


def test_train_killed_then_resumed(tiny_beir, tiny_model, tmp_path):
    """Killed while loading (an early delay) or at a commit point of its outputs; ``--resume`` finishes."""
    import sentence_transformers  # noqa: F401
    import transformers  # noqa: F401

    RESULTS["train"] = list(_train_trials(tmp_path, tiny_beir, tiny_model, delays=[0.1], k=1))


def test_train_resumes_after_a_kill_while_saving_a_checkpoint(tiny_beir, tiny_model, tmp_path):
    """What a kill -9 inside the Trainer's checkpoint save leaves (seen at a delay of 0.8 of the run):
    the newest checkpoint folder without its trainer_state.json. ``--resume`` must still finish."""
    import shutil

    argv = _train_setup(tmp_path, tiny_beir, tiny_model)
    ref, out = tmp_path / "ref", tmp_path / "out"
    assert exit_code(forked(cli(argv(ref, False)))) == 0, forked.last_err
    assert exit_code(forked(cli([*argv(out, False), "--max-steps", "3"]))) == 0, forked.last_err
    shutil.rmtree(out / "model", ignore_errors=True)
    for f in ("model.safetensors", "hardneg_train.meta.json"):
        (out / f).unlink(missing_ok=True)
    last = max((out / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.rsplit("-", 1)[1]))
    (last / "trainer_state.json").unlink()
    status = forked(cli(argv(out, True)))
    assert exit_code(status) == 0, forked.last_err


@pytest.mark.slow
def test_train_killed_at_many_delays(tiny_beir, tiny_model, tmp_path):
    rng = random.Random(11)
    RESULTS["train (many)"] = list(_train_trials(tmp_path, tiny_beir, tiny_model,
                                                 delays=sorted(rng.uniform(0.2, 1.0) for _ in range(8)), k=None))


# ----------------------------------------------------------------------------------------- ablate
def _ablate_trials(tmp: Path, tiny_beir: Path, tiny_model: Path, delays: list[float], k: int | None) -> tuple[int, int]:
    recipe = tmp / "grid.toml"
    recipe.write_text(f'[ablation]\ndata = "{tiny_beir}"\nstudent = "{tiny_model}"\nteachers = ["bm25"]\n'
                      f'methods = ["naive"]\nreferences = ["base"]\nnum_negatives = 1\ndepth = 5\n'
                      f'eval_backend = "torch"\n[train]\nbatch_size = 2\nepochs = 1\nlr = 1e-3\n'
                      f'query_max_length = 16\npassage_max_length = 32\n')

    def argv(out: Path, cache: Path) -> list[str]:
        return ["ablate", "--config", str(recipe), "--output", str(out), "--cache-dir", str(cache), "--quiet",
                "--no-plots"]

    def cells(out: Path) -> list[dict]:
        res = json.loads((out / "results.json").read_text())
        return [{k: v for k, v in c.items() if k not in ("seconds", "metrics", "per_query", "train")} for c in res["cells"]], \
            [c.get("metrics") for c in res["cells"]]

    ref = tmp / "ref"
    t0 = time.monotonic()
    specs = points_of(cli(argv(ref, tmp / "ref-cache")), tmp)
    took = time.monotonic() - t0
    want, want_metrics = cells(ref)
    cell_points = [s for s in specs if s.startswith("atomic.replaced:") and s.split(":")[1].startswith(("base-", "method-"))]
    trials = [("point", s) for s in sample(cell_points + [s for s in specs if "neg.jsonl" in s], k)]
    trials += [("delay", d * took) for d in delays]
    tried = diffs = 0
    for i, (how, what) in enumerate(trials):
        out, cache = tmp / f"t{i}", tmp / f"c{i}"
        if how == "point":
            status = forked(cli(argv(out, cache)), env={ENV: what})
            assert os.WIFSIGNALED(status), (what, forked.last_err)
        else:
            forked(cli(argv(out, cache)), kill_after=what)
        age_leftovers(out, cache)
        assert exit_code(forked(cli(argv(out, cache)))) == 0, (how, what, forked.last_err)
        got, metrics = cells(out)
        tried += 1
        same = got == want and all(m.keys() == w.keys() and all(abs(m[x] - w[x]) <= 1e-6 for x in w)
                                   for m, w in zip(metrics, want_metrics))
        diffs += not same
        assert same, f"ablation after a kill at {how} {what} differs"
        assert not leftovers(out), leftovers(out)
    return tried, diffs


def test_ablate_killed_then_resumed(tiny_beir, tiny_model, tmp_path):
    import sentence_transformers  # noqa: F401

    RESULTS["ablate"] = list(_ablate_trials(tmp_path, tiny_beir, tiny_model, delays=[0.5], k=2))


@pytest.mark.slow
def test_ablate_killed_at_every_cell_point_and_delays(tiny_beir, tiny_model, tmp_path):
    rng = random.Random(5)
    RESULTS["ablate (many)"] = list(_ablate_trials(tmp_path, tiny_beir, tiny_model,
                                                   delays=sorted(rng.uniform(0.1, 1.0) for _ in range(6)), k=None))


def test_zzz_report_counts(capsys):
    """The kill points tried and the differences found, per scenario (run last in this file)."""
    with capsys.disabled():
        print("\ncrash trials (tried, differences):", RESULTS)
    assert all(d == 0 for _, d in RESULTS.values())
