"""Atomic writes and content hashes, shared by every stage that writes output.

A crash never leaves a half file that looks whole: everything is written to a temporary sibling in
the same directory (``.NAME.*.tmp``), flushed, fsynced and renamed over the target. A kill -9 can
leave that temporary behind; the next successful write of the same file removes any of its
temporaries untouched for ``STALE_TMP_S`` seconds (a live writer's file is younger: it is being written). ``atomic_path``
hands out the temporary *path* for writers that only take a file name (ONNX export, FAISS);
``atomic_open`` the open file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import logging
import re
import time
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from hardneg.core.errors import HardnegError
from hardneg.core.testhooks import kill_point

log = logging.getLogger(__name__)

STALE_TMP_S = 60  # a temporary sibling untouched this long is a killed writer's leftover
NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
NO_PERMISSION = {errno.EACCES, errno.EPERM, errno.EROFS}


class WriteError(HardnegError, OSError):
    """A write failed for a reason the user fixes: disk full, no permission, read-only filesystem.

    Both a ``HardnegError`` (the CLI prints its one line and exits 2) and an ``OSError`` (code that
    tolerates a failed cache write, e.g. the FAISS index cache, still does)."""

    def __init__(self, err: OSError, path: str | Path, message: str):
        OSError.__init__(self, err.errno, err.strerror, str(path))
        self.message = message

    def __str__(self) -> str:
        return self.message


def _free(folder: Path) -> str:
    with contextlib.suppress(OSError):
        return f"{shutil.disk_usage(folder).free / 2**20:.1f} MiB free"
    return "free space unknown"


def write_error(err: OSError, path: str | Path, kept: str = "") -> OSError:
    """``err`` as a ``WriteError`` that says what to free or fix, where (other OSErrors unchanged).

    ``kept``: what of the run is kept on disk (default: whatever was already written)."""
    if isinstance(err, WriteError) or err.errno not in NO_SPACE | NO_PERMISSION:
        return err
    path = Path(path)
    folder = next((p for p in [path.parent, *path.parents] if p.exists()), path.parent)
    kept = kept or "what was already written is kept: rerun the same command to continue"
    if err.errno in NO_SPACE:
        fix = f"the disk holding {folder} is full ({_free(folder)}): free space there or write elsewhere"
    else:
        fix = f"{folder} is not writable by this user: fix its permissions or write elsewhere"
    return WriteError(err, path, f"cannot write {path}: {err.strerror or err} — {fix}; {kept}")


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[str]:
    """A temporary sibling path of ``path``; renamed over ``path`` only when the block succeeds.

    >>> import tempfile; d = Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "x.txt") as tmp:
    ...     _ = Path(tmp).write_text("hi")
    >>> (d / "x.txt").read_text(), sorted(p.name for p in d.iterdir())
    ('hi', ['x.txt'])
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as e:
        raise write_error(e, path) from None
    os.close(fd)
    try:
        try:
            yield tmp
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file normal permissions
            kill_point("atomic.written", path.name)
            os.replace(tmp, path)
            kill_point("atomic.replaced", path.name)
            _remove_stale_siblings(path, suffix)
        except OSError as e:  # disk full / no permission: one clear error (the temporary file goes below)
            err = write_error(e, path)
            if err is e:
                raise
            raise err from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _remove_stale_siblings(path: Path, suffix: str) -> None:
    """Remove ``.NAME.XXXXXXXX.tmp`` siblings of ``path`` older than ``STALE_TMP_S`` (killed writers')."""
    pat = re.compile(r"^" + re.escape(f".{path.name}.") + r"[a-z0-9_]{8}" + re.escape(suffix) + r"$")
    old = time.time() - STALE_TMP_S
    with contextlib.suppress(OSError):
        for q in path.parent.iterdir():
            if pat.match(q.name):
                with contextlib.suppress(OSError):
                    if q.is_file() and not q.is_symlink() and q.stat().st_mtime < old:
                        q.unlink()
                        log.warning("removed %s, left by an interrupted earlier write", q)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[Any]:
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` only on success."""
    kwargs = {} if "b" in mode else {"encoding": encoding}
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as pretty JSON, atomically."""
    with atomic_open(path) as f:
        json.dump(to_jsonable(obj), f, indent=2, sort_keys=False)
        f.write("\n")


def read_json(path: str | Path) -> Any:
    """The JSON value in ``path``. Bytes that are not UTF-8 raise ``json.JSONDecodeError`` (naming the
    line and byte) like any other malformed JSON, so callers need to catch only that (or ValueError)."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        doc = raw.decode("utf-8", errors="replace")
        pos = len(raw[:e.start].decode("utf-8", errors="replace"))
        raise json.JSONDecodeError(f"not UTF-8 text (byte 0x{raw[e.start]:02x})", doc, pos) from None
    return json.loads(text)


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


def file_hash(path: str | Path, algo: str = "sha256", chunk: int = 1 << 20) -> str:
    """Hex digest of a file's bytes (``algo``: any ``hashlib`` name), read in ``chunk``-byte blocks."""
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_file(path: str | Path) -> str:
    return file_hash(path, "sha256")


def sha256_texts(texts: Any) -> str:
    """Order-sensitive hash of an iterable of strings (length-prefixed, so no join ambiguity)."""
    h = hashlib.sha256()
    for t in texts:
        b = t.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()
