"""Fuzzing every command with generated input files and argument vectors (issue 13).

Hypothesis builds a folder of inputs per example: a BEIR set (corpus, queries, qrels), a pairs
JSONL, a negatives file (+ sometimes its meta), evaluation runs and an ablation recipe, each either
valid (the tiny fixture's content) or broken in one or more ways: latin-1 / UTF-16 bytes, BOMs,
CRLF, NULs, truncation mid-line, huge lines, wrong JSON types, unknown ids, non-finite grades and
scores, empty files. Then it draws an argument vector for one subcommand whose paths point at those
inputs (or at bad places: the inputs themselves, folders, empty paths) and whose other values are
valid or junk, and runs ``hardneg.cli.main.main(argv)`` in-process (a few fixed cases go through
``python -m hardneg`` as a subprocess).

The property: exit 0 or 2; on 2 the last stderr line is one ``error:`` line; no exception escapes
(no traceback, none logged either); no input file's bytes change; no lock file is left behind.
Teachers are bm25/random only and models are missing or broken folders, so every example takes
milliseconds. The default suite runs a derandomized slice (``FUZZ_EXAMPLES``, a few dozen); the
long run is ``-m slow`` with ``HARDNEG_FUZZ_EXAMPLES`` (default 2000) examples per command.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import TINY_CORPUS, TINY_QRELS, TINY_QUERIES
from hardneg.cli.main import main

FUZZ_EXAMPLES = 12  # per command in the default suite (x 9 commands + the file-only test)
SLOW_EXAMPLES = int(os.environ.get("HARDNEG_FUZZ_EXAMPLES", "2000"))
ERROR_LINE = re.compile(r"^(hardneg[\w -]*: )?error: \S")
TRIED: dict[str, int] = {}  # command -> examples run (printed by the slow test)

# ------------------------------------------------------------------------------------- values
JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 10**20), st.text(max_size=8),
                         st.floats(allow_nan=True, allow_infinity=True))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
                           max_leaves=6)
UNKNOWN_IDS = st.sampled_from(["zz", "d99", "", " ", "q9", "None", "d1 ", "\u00e9"])
GRADES = st.sampled_from(["1", "2", "0", "1.0", "inf", "-inf", "nan", "NaN", "1e400", "-1", "0.5", "abc", "",
                          " 3 ", "1_0", "0x1", "Infinity"])
SCORES = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "0.5", "\"0.5\"", "null", "true", "[]"])


def _jsonl(objs) -> str:
    return "".join(json.dumps(o) + "\n" for o in objs)


def _qrels_text(rows) -> str:
    return "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in rows)


@st.composite
def json_line_edits(draw, lines: list[str]) -> list[str]:
    """Object-level breakage of a JSONL file's lines: a value of the wrong type, a dropped or
    extra key, an unknown id, a line that is not an object, a duplicate, a blank line."""
    lines = list(lines)
    for _ in range(draw(st.integers(0, 3))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.sampled_from(["value", "drop", "add", "id", "notobj", "dup", "blank", "garbage", "score"]))
        try:
            obj = json.loads(lines[i])
        except ValueError:
            obj = None
        if kind in ("value", "drop", "add", "id") and isinstance(obj, dict) and obj:
            key = draw(st.sampled_from(sorted(obj)))
            if kind == "value":
                obj[key] = draw(JSON_VALUES)
            elif kind == "drop":
                del obj[key]
            elif kind == "add":
                obj[draw(st.text(max_size=6))] = draw(JSON_VALUES)
            else:
                obj[key] = draw(UNKNOWN_IDS) if not isinstance(obj[key], list) else [draw(UNKNOWN_IDS)]
            lines[i] = json.dumps(obj, allow_nan=True)
        elif kind == "score" and isinstance(obj, dict) and obj:
            key = draw(st.sampled_from(sorted(obj)))
            lines[i] = json.dumps({**obj, key: "@@"}).replace('"@@"', draw(SCORES))
        elif kind == "notobj":
            lines[i] = draw(st.sampled_from(["[1, 2]", '"text"', "null", "NaN", "42", "{", "}", "{\"_id\": }"]))
        elif kind == "dup":
            lines.insert(i, lines[i])
        elif kind == "blank":
            lines.insert(i, draw(st.sampled_from(["", " ", "\t", "\x0c"])))
        else:
            lines.insert(i, draw(st.text(max_size=30)))
    return lines


@st.composite
def byte_edits(draw, text: str) -> bytes:
    """Encoding and byte-level breakage of a whole file."""
    enc = draw(st.sampled_from(["utf-8"] * 6 + ["utf-8-sig", "latin-1", "utf-16", "utf-16-le", "cp1252"]))
    if enc in ("latin-1", "cp1252") and text:
        text = text.replace("a", "\u00e4", 1)  # a byte that is not UTF-8
    data = text.encode(enc, errors="replace")
    for _ in range(draw(st.integers(0, 2))):
        kind = draw(st.sampled_from(["crlf", "nul", "truncate", "huge", "empty", "cr", "bom", "random", "none"]))
        if kind == "crlf":
            data = data.replace(b"\n", b"\r\n")
        elif kind == "cr":
            data = data.replace(b"\n", b"\r")
        elif kind == "nul" and data:
            i = draw(st.integers(0, len(data)))
            data = data[:i] + b"\x00" + data[i:]
        elif kind == "truncate" and data:
            data = data[:draw(st.integers(0, len(data) - 1))]
        elif kind == "huge":
            n = draw(st.sampled_from([70_000, 300_000]))
            big = draw(st.sampled_from(["json", "raw"]))
            line = (json.dumps({"_id": "big", "title": "", "text": "x " * n}) if big == "json" else "y" * n)
            data += line.encode() + b"\n"
        elif kind == "empty":
            data = b""
        elif kind == "bom":
            data = draw(st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"])) + data
        elif kind == "random":
            i = draw(st.integers(0, len(data)))
            data = data[:i] + draw(st.binary(min_size=1, max_size=8)) + data[i:]
    return data


@st.composite
def jsonl_file(draw, objs, broken: bool = True) -> bytes | None:
    """A JSONL file from ``objs``: valid unless ``broken``, then broken at object or byte level, or absent."""
    lines = [json.dumps(o) for o in objs]
    if not broken:
        return ("\n".join(lines) + "\n").encode()
    if draw(st.integers(0, 9)) == 0:
        return None  # the file is missing
    if draw(st.booleans()):
        lines = draw(json_line_edits(lines))
    text = "\n".join(lines) + ("\n" if draw(st.integers(0, 5)) else "")
    return draw(byte_edits(text)) if draw(st.booleans()) else text.encode()


@st.composite
def qrels_file(draw, split: str, broken: bool = True) -> bytes | None:
    rows = [list(r) for r in TINY_QRELS[split]]
    if not broken:
        return _qrels_text(rows).encode()
    if draw(st.integers(0, 9)) == 0:
        return None
    header = "query-id\tcorpus-id\tscore"
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(rows) - 1))
        kind = draw(st.sampled_from(["grade", "qid", "did", "extra", "missing", "spaces"]))
        if kind == "grade" and len(rows[i]) == 3:
            rows[i][2] = draw(GRADES)
        elif kind == "qid" and rows[i]:
            rows[i][0] = draw(UNKNOWN_IDS)
        elif kind == "did" and len(rows[i]) > 1:
            rows[i][1] = draw(UNKNOWN_IDS)
        elif kind == "extra":
            rows[i].append(draw(st.sampled_from(["x", "1", ""])))
        elif kind == "missing":
            rows[i] = rows[i][:draw(st.integers(0, 2))]
        elif kind == "spaces":
            rows[i] = [" ".join(map(str, rows[i]))]
    form = draw(st.sampled_from(["beir"] * 4 + ["trec", "noheader", "badheader"]))
    body = ["\t".join(map(str, r)) for r in rows]
    if form == "trec":
        text = "".join(f"{(r or ['?'])[0]} 0 {' '.join(map(str, r[1:]))}\n" for r in rows)
    elif form == "noheader":
        text = "\n".join(body) + "\n"
    elif form == "badheader":
        text = draw(st.sampled_from(["qid\tdid\tscore", "query-id\tcorpus-id", "query-id\tcorpus-id\tscore\textra"])) \
            + "\n" + "\n".join(body) + "\n"
    else:
        text = header + "\n" + "\n".join(body) + "\n"
    return draw(byte_edits(text)) if draw(st.booleans()) else text.encode()


NEG_ROWS = [{"qid": q, "pos_id": d, "pos_score": 0.9, "neg_ids": n, "neg_scores": [0.5, 0.4], "neg_teachers": ["bm25"] * 2}
            for q, d, n in (("q1", "d1", ["d3", "d2"]), ("q1", "d4", ["d3", "d2"]), ("q2", "d2", ["d6", "d1"]),
                            ("q3", "d5", ["d3", "d4"]))]
PAIRS = [{"query": "what is a cat", "pos": ["Cats are mammals."], "neg": ["The moon orbits."]},
         {"query": "dogs", "pos": ["Dogs descend from wolves."]}]
RUN = {"ndcg@10": {"q1": 0.5, "q2": 1.0, "q3": 0.0}, "recall@100": {"q1": 1.0, "q2": 1.0, "q3": 0.0}}
RECIPE = ('[ablation]\ndata = "{data}"\nstudent = "{root}/nomodel"\nteachers = ["bm25"]\nmethods = ["naive"]\n'
          'references = ["base"]\nnum_negatives = 1\ndepth = 5\ncache_dir = "{root}/cache"\n[train]\nbatch_size = 2\n')


@st.composite
def input_files(draw) -> dict[str, bytes | None]:
    """Relative path -> bytes (None: absent) of one example's inputs."""
    names = ["corpus", "queries", "train", "test", "pairs", "neg", "run", "other"]
    broken = draw(st.sets(st.sampled_from(names), max_size=2)) if draw(st.integers(0, 3)) else set()
    files = {
        "data/corpus.jsonl": draw(jsonl_file(TINY_CORPUS, "corpus" in broken)),
        "data/queries.jsonl": draw(jsonl_file(TINY_QUERIES, "queries" in broken)),
        "data/qrels/train.tsv": draw(qrels_file("train", "train" in broken)),
        "data/qrels/test.tsv": draw(qrels_file("test", "test" in broken)),
        "pairs.jsonl": draw(jsonl_file(PAIRS, "pairs" in broken)),
        "neg.jsonl": draw(jsonl_file(NEG_ROWS, "neg" in broken)),
        "run.json": json.dumps({"ndcg@10": 0.5}).encode(),
        "run.per_query.json": draw(jsonl_file([RUN], "run" in broken)),
        "other.per_query.json": draw(st.sampled_from([json.dumps(RUN), json.dumps({"ndcg@10": {"q1": "x"}}),
                                                      "[]", "{}", '{"ndcg@10": {"q1": NaN}}', ""])).encode()
        if "other" in broken else json.dumps(RUN).encode(),
        "badmodel/config.json": draw(st.sampled_from([b"{}", b"not json", b'{"model_type": "bert"}'])),
    }
    if draw(st.integers(0, 3)) == 0:  # a meta beside the negatives file, matching or not
        files["neg.jsonl.meta.json"] = draw(st.sampled_from([b"{}", b"garbage", json.dumps(
            {"committed": {"neg.jsonl": {"sha256": "0" * 64, "bytes": 1}}}).encode()]))
    recipe = RECIPE
    if draw(st.integers(0, 3)) == 0:
        line = draw(st.sampled_from(['methodz = ["naive"]', 'num_negatives = -1', 'seeds = "x"', "[trian]",
                                     'teachers = []', 'depth = 1e400', '"unterminated', 'labels = "few"']))
        recipe = recipe.replace("depth = 5\n", line + "\n")
    files["recipe.toml"] = recipe.encode()
    return files


def materialize(root: Path, files: dict[str, bytes | None]) -> None:
    (root / "out").mkdir()
    (root / "emptydir").mkdir()
    for rel, data in files.items():
        if data is None:
            continue
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        data = data.replace(b"{data}", str(root / "data").encode()).replace(b"{root}", str(root).encode())
        p.write_bytes(data)


# ------------------------------------------------------------------------------ argument vectors
def _paths(root: Path, *names: str) -> st.SearchStrategy:
    return st.sampled_from([str(root / n) if n else "" for n in names])


NUMS = st.sampled_from(["1", "2", "3", "2", "1", "0", "-1", "10", "100000000000000000000", "x", "", "1.5", "nan", "inf", "-0"])
FLOATS = st.sampled_from(["0.95", "0.5", "0.9", "0.1", "0", "1", "-1", "nan", "inf", "-inf", "1e400", "x", "", "2"])
TEXTS = st.sampled_from(["", "query: ", "\u00e9\u00e8 ", "x" * 300, "--", "\x00"]).filter(lambda s: "\x00" not in s)


def _flag_pool(cmd: str, root: Path) -> tuple[list[str], dict[str, st.SearchStrategy]]:
    """(positional arguments, {flag: value strategy}) for ``cmd``; a value None is a switch."""
    data = _paths(root, "data", "data", "data", "data", "data", "pairs.jsonl", "pairs.jsonl", "missing", "neg.jsonl", "data/corpus.jsonl", "emptydir", "")
    split = st.sampled_from(["train", "test", "train", "train", "test", "dev", "", "../x", "train.tsv"])
    out_file = _paths(root, "out/o.jsonl", "out/o.jsonl", "out/o.jsonl", "out/o.jsonl", "out", "data/corpus.jsonl", "neg.jsonl", "",
                      "data/corpus.jsonl/x", "out/a/b/o.jsonl", "data/qrels/train.tsv")
    out_dir = _paths(root, "out/run", "out/run", "out/run", "out", "data", "", "neg.jsonl", "emptydir")
    teacher = st.sampled_from(["bm25", "bm25", "bm25", "random", "random", str(root / "missing"), str(root / "emptydir"), ""])
    model = _paths(root, "missing", "emptydir", "badmodel", "")
    negs = _paths(root, "neg.jsonl", "neg.jsonl", "neg.jsonl", "neg.jsonl", "missing", "data/corpus.jsonl", "emptydir", "")
    common = {"--data": data, "--split": split}
    if cmd == "data":
        return ["data", "info"], {"": data, "--split": split}
    if cmd == "mine":
        return ["mine"], {**common, "--teacher": teacher, "--output": out_file, "--num-negatives": NUMS,
                          "--depth": NUMS, "--method": st.sampled_from(["naive", "shifted", "abs", "marginpos", "percpos", "x"]),
                          "--perc": FLOATS, "--margin": FLOATS, "--max-score": FLOATS, "--min-score": FLOATS,
                          "--shift": NUMS, "--select": st.sampled_from(["top", "sampled", "top1-sampled", "simans", "y"]),
                          "--sample-from": NUMS, "--sample-temperature": FLOATS, "--seed": NUMS,
                          "--on-shortfall": st.sampled_from(["keep", "drop", "deepen", "z"]),
                          "--positive-score": st.sampled_from(["min", "mean", "max"]),
                          "--ensemble": st.sampled_from(["cross-sample", "intra-dedup", "intra-nodedup"]),
                          "--anchor-only": None, "--judge": st.sampled_from(["none", "agreement", "cross-encoder", "llm"]),
                          "--judge-teacher": teacher, "--judge-frac": FLOATS, "--judge-min-votes": NUMS,
                          "--false-negatives": st.sampled_from(["remove", "relabel", "keep", "drop-query"]),
                          "--judge-model": model, "--backend": st.sampled_from(["torch", "onnx", "tensorrt"]),
                          "--max-length": NUMS, "--query-prompt": TEXTS, "--batch-size": NUMS,
                          "--search-backend": st.sampled_from(["exact", "hnsw", "ivf-pq"]), "--recall-check": NUMS,
                          "--max-memory": st.sampled_from(["1MB", "0", "x", "1", "-5GB"]),
                          "--shard-dtype": st.sampled_from(["float32", "float16", "int8"]),
                          "--cache-dir": _paths(root, "cache", "data/corpus.jsonl", "")}
    if cmd == "export":
        return ["export"], {"": negs, **common, "--output": out_file,
                            "--format": st.sampled_from(["flagembedding", "sentence-transformers", "tevatron", "q"]),
                            "--group-by-query": None, "--st-format": st.sampled_from(["n-tuple", "triplet"]),
                            "--num-negatives": NUMS}
    if cmd == "inspect":
        return ["inspect"], {"": negs, **common, "--output": out_file, "--bins": NUMS, "--audit-sample": NUMS,
                             "--seed": NUMS, "--plot": _paths(root, "out/p.png", "out/p.txt", "neg.jsonl", "out", "")}
    if cmd == "evaluate":
        return ["evaluate"], {**common, "--model": model, "--output": out_file, "--k": NUMS, "--batch-size": NUMS,
                              "--max-length": NUMS, "--backend": st.sampled_from(["torch", "onnx", "onnx-int8"]),
                              "--query-prompt": TEXTS, "--no-progress": None}
    if cmd == "train":
        return ["train"], {**common, "--model": model, "--negatives": negs, "--output": out_dir,
                           "--num-negatives": NUMS, "--batch-size": NUMS, "--epochs": FLOATS, "--lr": FLOATS,
                           "--max-steps": NUMS, "--save-steps": NUMS, "--seed": NUMS, "--warmup": FLOATS,
                           "--query-max-length": NUMS, "--positives": st.sampled_from(["one", "all"]),
                           "--short-rows": st.sampled_from(["drop", "error"]), "--resume": None, "--force": None,
                           "--config": _paths(root, "recipe.toml", "missing", "neg.jsonl")}
    if cmd == "tune":
        return ["tune"], {**common, "--teacher": teacher, "--output": out_dir,
                          "--methods": st.sampled_from(["naive,percpos:0.95", "abs:0.7", "percpos", "x:1", "", "shifted:-1"]),
                          "--max-fn-rate": FLOATS, "--num-negatives": NUMS, "--depth": NUMS, "--max-queries": NUMS,
                          "--seed": NUMS}
    if cmd == "compare":
        runs = _paths(root, "run.json", "run.per_query.json", "other.per_query.json", "neg.jsonl", "missing", "data")
        return ["compare"], {"": runs, " ": runs, "  ": runs, "--metric": st.sampled_from(["ndcg@10", "NDCG@10", "nope", ""]),
                             "--resamples": NUMS, "--seed": NUMS, "--intersect": None,
                             "--json": _paths(root, "out/c.json", "run.json", "out", "")}
    if cmd == "ablate":
        return ["ablate"], {"--config": _paths(root, "recipe.toml", "recipe.toml", "missing.toml", "neg.jsonl"),
                            "--output": out_dir, "--dry-run": None, "--report-only": None, "--partial": None,
                            "--no-plots": None, "--quiet": None, "--seeds": st.sampled_from(["0", "0,1", "x", ""]),
                            "--methods": st.sampled_from(["naive", "percpos:0.95", "nope", ""]),
                            "--teachers": st.sampled_from(["bm25", "random", "", str(root / "missing")]),
                            "--num-negatives": NUMS, "--data": data}
    raise ValueError(cmd)


REQUIRED = {"mine": ("--teacher", "--data", "--output"), "export": ("", "--data", "--format", "--output"),
            "inspect": ("", "--data"), "evaluate": ("--model", "--data"), "train": ("--model", "--data", "--output"),
            "tune": ("--teacher", "--data"), "compare": ("", " "), "ablate": ("--config", "--output"), "data": ("",)}
# what costs more than milliseconds is kept out: --dry-run is forced on for ablate unless the recipe is
# broken (a full grid would train), train gets no real model
CHEAP_ABLATE = ("--dry-run", "--report-only")


@st.composite
def argv_for(draw, cmd: str, root: Path) -> list[str]:
    head, pool = _flag_pool(cmd, root)
    required = [f for f in REQUIRED[cmd] if draw(st.integers(0, 29))]  # now and then a required one is left out
    optional = draw(st.lists(st.sampled_from(sorted(set(pool) - set(REQUIRED[cmd]))), max_size=3, unique=True))
    argv = list(head)
    for flag in [*required, *optional]:
        value = pool[flag]
        if value is None:
            argv.append(flag)
        elif not flag.strip():  # a positional
            argv.append(draw(value))
        else:
            v = draw(value)
            argv += [f"{flag}={v}"] if v.startswith("-") else [flag, v]
    if cmd == "ablate" and not any(a in argv for a in CHEAP_ABLATE):
        argv.append("--dry-run")
    if draw(st.integers(0, 14)) == 0:
        argv.append(draw(st.sampled_from(["--bogus", "-x", "--help", "--", "extra"])))
    return argv


# ---------------------------------------------------------------------------------- the property
def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.relative_to(root).parts[0] == "out"}


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.with_traceback: list[logging.LogRecord] = []

    def emit(self, record):
        if record.exc_info:
            self.with_traceback.append(record)


OUTPUT_FLAGS = ("--output", "--json", "--plot")


def _outputs(argv: list[str]) -> list[str]:
    """The paths ``argv`` names as outputs (``--output X`` or ``--output=X``)."""
    out = []
    for i, a in enumerate(argv):
        flag, eq, value = a.partition("=")
        if flag in OUTPUT_FLAGS:
            v = value if eq else (argv[i + 1] if i + 1 < len(argv) else "")
            if v:
                out.append(os.path.abspath(v))
    return out


def _protected(argv: list[str], root: Path) -> dict[str, str]:
    """Hashes of the files no run of ``argv`` may change: every file of ``root`` but ``out/`` and
    what an output flag names (with its siblings: meta, audit), unless that is also an input."""
    outputs = _outputs(argv)
    inputs = [os.path.abspath(a) for a in argv if a.startswith(str(root)) and os.path.abspath(a) not in outputs]

    def is_output(rel: str) -> bool:
        f = str(root / rel)
        if any(f == i or f.startswith(i.rstrip("/") + "/") or f.startswith(i + ".") for i in inputs):
            return False  # an input (or a file of an input folder, or its meta): protected
        return any(f == o or f.startswith(o + ".") or f.startswith(o.rstrip("/") + "/")
                   or f.startswith(o.removesuffix(".jsonl") + ".") for o in outputs)

    return {k: v for k, v in _hashes(root).items() if not is_output(k)}


def check_cli(argv: list[str], root: Path) -> tuple[int, str]:
    """Run ``main(argv)`` in ``root`` and assert the property; returns (exit code, stderr)."""
    before = _protected(argv, root)
    err, out, records = io.StringIO(), io.StringIO(), _Records()
    logging.getLogger().addHandler(records)
    cwd = os.getcwd()
    os.chdir(root)  # "" and relative paths resolve inside the example's folder, never in the repository
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                rc = main(argv)
            except SystemExit as e:  # argparse (usage error, --help)
                rc = e.code if isinstance(e.code, int) else 2
    finally:
        logging.getLogger().removeHandler(records)
        os.chdir(cwd)
    stderr = err.getvalue()
    assert rc in (0, 2), f"exit {rc} for {argv}\n{stderr[-2000:]}"
    assert "Traceback" not in stderr, f"{argv}\n{stderr[-3000:]}"
    assert not records.with_traceback, f"{argv}: logged {records.with_traceback[0].getMessage()}"
    if rc == 2:
        last = [ln for ln in stderr.splitlines() if ln.strip()][-1:] if stderr.strip() else [""]
        usage = "usage:" in stderr or "usage:" in out.getvalue()  # `hardneg` / `hardneg data` without an action
        assert ERROR_LINE.match(last[0]) or (usage and not stderr.strip()), \
            f"exit 2 without a one-line error for {argv}:\n{stderr[-2000:]}"
    after = _hashes(root)
    changed = [k for k in before if after.get(k) != before[k]]
    assert not changed, f"{argv} changed input files {changed}"
    locks = [str(p) for p in root.rglob("*.lock")]
    assert not locks, f"{argv} left lock files {locks}"
    return rc, stderr


def _fuzz_command(cmd: str, data) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        materialize(root, data.draw(input_files(), label="files"))
        os.environ["HARDNEG_CACHE"] = str(root / "cache")
        argv = data.draw(argv_for(cmd, root), label="argv")
        check_cli(argv, root)
        TRIED[cmd] = TRIED.get(cmd, 0) + 1


COMMANDS = ["data", "mine", "export", "inspect", "evaluate", "train", "tune", "compare", "ablate"]


@pytest.fixture(autouse=True)
def _own_cache(monkeypatch):
    monkeypatch.setenv("HARDNEG_CACHE", os.environ.get("HARDNEG_CACHE", tempfile.gettempdir()))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.mark.parametrize("cmd", COMMANDS)
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_cli(cmd, data):
    _fuzz_command(cmd, data)


@pytest.mark.slow
@pytest.mark.parametrize("cmd", COMMANDS)
@settings(max_examples=SLOW_EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_cli_long(cmd, data):
    _fuzz_command(cmd, data)


# ------------------------------------------------------------------ the readers, straight on files
@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(files=input_files())
def test_fuzz_readers_raise_only_data_errors(files):
    """The readers themselves: any generated file gives a result or a HardnegError, never another exception."""
    from hardneg.core.errors import HardnegError
    from hardneg.data.load import load_data
    from hardneg.data.negatives import read_negatives

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        materialize(root, files)
        for load in (lambda: load_data(root / "data", "train"), lambda: load_data(root / "data", "test"),
                     lambda: load_data(root / "pairs.jsonl"), lambda: read_negatives(root / "neg.jsonl")):
            try:
                load()
            except HardnegError as e:
                assert "\n" not in str(e), str(e)


# --------------------------------------------------------------- known cases found by the fuzzer
def _write(root: Path, files: dict[str, bytes | None]) -> Path:
    base = {"data/corpus.jsonl": _jsonl(TINY_CORPUS).encode(), "data/queries.jsonl": _jsonl(TINY_QUERIES).encode(),
            "data/qrels/train.tsv": _qrels_text(TINY_QRELS["train"]).encode(),
            "data/qrels/test.tsv": _qrels_text(TINY_QRELS["test"]).encode(), "neg.jsonl": _jsonl(NEG_ROWS).encode(),
            "recipe.toml": RECIPE.encode()}
    materialize(root, {**base, **files})
    return root


MINE = ["mine", "--teacher", "bm25", "--data", "{root}/data", "--output", "{root}/out/o.jsonl"]
FOUND = [  # (name, files, argv with {root}): the first six were tracebacks or silent results the fuzzer found
    ("empty negatives path (ValueError in audit_path)", {}, ["export", "", "--data", "{root}/data", "--format",
                                                              "tevatron", "--output", "{root}/out/e.jsonl"]),
    ("non-UTF-8 run file (UnicodeDecodeError in read_json)",
     {"run.per_query.json": json.dumps(RUN).encode().replace(b"q1", b"q\xe4")},
     ["compare", "{root}/run.per_query.json", "{root}/run.per_query.json"]),
    ("empty --model (tokenizer loaded from the working directory, multi-line error)", {},
     ["evaluate", "--model", "", "--data", "{root}/data"]),
    ("empty --cache-dir (pool cache written into the working directory)", {}, [*MINE, "--cache-dir", ""]),
    ("NaN score in negatives (ValueError in numpy.histogram)", {"neg.jsonl": _jsonl(NEG_ROWS).replace("0.5", "NaN", 1).encode()},
     ["inspect", "{root}/neg.jsonl", "--data", "{root}/data"]),
    ("Infinity pos_score (exported as Infinity, exit 0)", {"neg.jsonl": _jsonl(NEG_ROWS).replace("0.9", "Infinity").encode()},
     ["export", "{root}/neg.jsonl", "--data", "{root}/data", "--format", "flagembedding", "--output", "{root}/out/e.jsonl"]),
    # already clear errors before; kept as regressions of the generated kinds
    ("utf16 corpus", {"data/corpus.jsonl": _jsonl(TINY_CORPUS).encode("utf-16")}, ["data", "info", "{root}/data"]),
    ("nul in queries", {"data/queries.jsonl": _jsonl(TINY_QUERIES).replace("cat", "c\x00t").encode()}, MINE),
    ("huge grade", {"data/qrels/train.tsv": _qrels_text([("q1", "d1", "1e400")]).encode()},
     ["mine", "--teacher", "random", "--data", "{root}/data", "--output", "{root}/out/o.jsonl"]),
    ("truncated corpus", {"data/corpus.jsonl": _jsonl(TINY_CORPUS).encode()[:-17]},
     ["tune", "--teacher", "bm25", "--data", "{root}/data"]),
    ("empty queries", {"data/queries.jsonl": b""}, MINE),
    ("broken recipe", {"recipe.toml": b'[ablation]\n"unterminated\n'},
     ["ablate", "--config", "{root}/recipe.toml", "--output", "{root}/out/run", "--dry-run"]),
]


@pytest.mark.parametrize("name,files,argv", FOUND, ids=[f[0] for f in FOUND])
def test_found_cases(name, files, argv, tmp_path):
    root = _write(tmp_path, files)
    rc, err = check_cli([a.replace("{root}", str(root)) for a in argv], root)
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert not (root / "pools").exists() and not (root / "embeddings").exists()


def test_entry_point_subprocess(tmp_path):
    """Through ``python -m hardneg`` (the real entry point, a fresh interpreter): a broken corpus and a
    bad flag value each exit 2 with one error line and no traceback."""
    root = _write(tmp_path, {"data/corpus.jsonl": _jsonl(TINY_CORPUS).encode("latin-1").replace(b"Cats", b"Ca\xfft")})
    env = {**os.environ, "HARDNEG_CACHE": str(tmp_path / "cache")}
    before = _hashes(root)
    for argv in (["mine", "--teacher", "bm25", "--data", str(root / "data"), "--output", str(root / "out/o.jsonl")],
                 ["inspect", str(root / "neg.jsonl"), "--data", str(root / "data"), "--bins", "x"]):
        p = subprocess.run([sys.executable, "-m", "hardneg", *argv], capture_output=True, text=True, env=env, timeout=120)
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        assert p.returncode == 2 and "Traceback" not in p.stderr and ERROR_LINE.match(lines[-1]), p.stderr
    assert _hashes(root) == before


@pytest.mark.slow
def test_report_counts():
    """Printed after the long run (run in the same session): examples tried per command."""
    print("fuzz examples tried:", TRIED, "total", sum(TRIED.values()))
