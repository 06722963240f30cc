"""The one model fingerprint: sha256 over the files whose bytes decide a model's vectors.

``model_fingerprint(path)`` is what teachers, encoders (``weights_fingerprint``), the embedding
cache and the trainer's meta file (base model and trained model) all record, so a trained
model's meta can be matched to the teacher that mined its negatives. Content hashes of big files
are memoised per machine under the cache root (``file_hashes.json``).
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import Iterable

from hardneg.core.errors import HardnegError
from hardneg.core.files import read_json, sha256_file, write_json
from hardneg.core.paths import cache_root

WEIGHT_SUFFIXES = {".safetensors", ".bin", ".onnx", ".pt", ".pth", ".model"}

SKIP_FILES = {"training_args.bin", "optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json",
              "loss_log.json", "hardneg_train.meta.json"}  # provenance written beside a trained model

SKIP_DIRS = {"onnx", "openvino", ".git", ".cache", "runs"}


def hash_files(paths: Iterable[Path], root: Path, cache_dir: str | Path | None = None) -> str:
    """sha256 over (relative name, content hash) of ``paths``; content hashes are memoised.

    The memo is keyed by ``path|size|mtime_ns``: touching or rewriting a file re-hashes it, an
    unchanged 400 MB checkpoint is hashed once per machine.
    """
    memo_path = cache_root(cache_dir) / "file_hashes.json"
    try:
        memo = read_json(memo_path)
    except (OSError, ValueError):
        memo = {}
    h, changed = hashlib.sha256(), False
    for p in sorted(paths):
        st = p.stat()
        k = f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        if k not in memo:
            memo[k], changed = sha256_file(p), True
        h.update(f"{p.relative_to(root).as_posix()}\0{memo[k]}\n".encode())
    if changed:
        with contextlib.suppress(OSError):  # a read-only cache only costs speed
            write_json(memo_path, memo)
    return h.hexdigest()


def model_files(path: str | Path) -> list[Path]:
    """Files whose bytes decide the vectors: weights, tokenizer, configs (not READMEs, not
    optimizer state, not alternative onnx/openvino exports, not ``checkpoint-*`` folders)."""
    root = Path(path)
    out = []
    for p in root.rglob("*"):
        rel = p.relative_to(root).parts
        if not p.is_file() or p.name in SKIP_FILES or any(d in SKIP_DIRS or d.startswith("checkpoint-")
                                                          for d in rel[:-1]):
            continue
        if p.suffix in WEIGHT_SUFFIXES or p.suffix in (".json", ".txt"):
            out.append(p)
    if not any(p.suffix in WEIGHT_SUFFIXES - {".model"} for p in out):
        raise HardnegError(f"no weight files (*.safetensors, *.bin, *.onnx) under {root}: is this a model folder?")
    return out


def weights_fingerprint(path: str | Path, cache_dir: str | Path | None = None) -> str:
    """sha256 over the weight, tokenizer and config files of the model folder ``path``."""
    return hash_files(model_files(path), Path(path), cache_dir)


def model_fingerprint(path: str | Path, cache_dir: str | Path | None = None) -> str:
    """32 hex characters of ``weights_fingerprint``: how meta files and cache keys name a model folder."""
    return weights_fingerprint(path, cache_dir)[:32]
