"""Atomic writes and provenance (``*.meta.json``) shared by every stage that writes output.

A crash never leaves a half file that looks whole: everything is written to a temporary file in
the same directory, flushed, fsynced and renamed over the target.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[Any]:
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    kwargs = {} if "b" in mode else {"encoding": encoding}
    try:
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as pretty JSON, atomically."""
    with atomic_open(path) as f:
        json.dump(to_jsonable(obj), f, indent=2, sort_keys=False)
        f.write("\n")


def read_json(path: str | Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, paths, numpy scalars/arrays and tuples -> plain JSON types."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {k: to_jsonable(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # numpy scalar or array
        return obj.tolist()
    return obj


def meta_path(output: str | Path) -> Path:
    """``out/negatives.jsonl`` -> ``out/negatives.jsonl.meta.json``."""
    output = Path(output)
    return output.with_name(output.name + ".meta.json")


def write_meta(output: str | Path, config: Any, **extra: Any) -> Path:
    """Write provenance next to ``output``: code version, config, environment, plus ``extra``."""
    from hardneg import __version__

    meta = {
        "hardneg_version": __version__,
        "created_unix": round(time.time(), 3),
        "python": platform.python_version(),
        "config": to_jsonable(config),
        **{k: to_jsonable(v) for k, v in extra.items()},
    }
    path = meta_path(output)
    write_json(path, meta)
    return path


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_texts(texts: Any) -> str:
    """Order-sensitive hash of an iterable of strings (length-prefixed, so no join ambiguity)."""
    h = hashlib.sha256()
    for t in texts:
        b = t.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()
