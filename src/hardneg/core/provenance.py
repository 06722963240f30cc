"""Provenance: the ``*.meta.json`` written next to every output, by one function for every command.

A meta file holds the hardneg version, the creation time, the Python version, the stage's config
and whatever the stage adds (fingerprints, data hash, seed, timings, stats).

It is also the output's commit record: ``"committed"`` names the sha256 and size of the output file
(and of ``with_files``, siblings written with it, e.g. a per-query or audit file). Writers write the
data first (atomically), the meta last (atomically), so a kill between the two leaves data whose meta
does not match: ``read_meta`` then raises ("not completely written") and ``is_committed`` (what
resume logic asks) says False. A meta from before commit records (no ``"committed"``) is trusted.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any, Iterable

from hardneg.core.errors import HardnegError
from hardneg.core.files import read_json, sha256_file, to_jsonable, write_json

COMMITTED = "committed"
_HASHES: dict[tuple, str] = {}  # (path, dev, inode, size, mtime_ns) -> sha256: each file hashed once per process


def meta_path(output: str | Path) -> Path:
    """``out/negatives.jsonl`` -> ``out/negatives.jsonl.meta.json``."""
    output = Path(output)
    return output.with_name(output.name + ".meta.json")


def _sha256(path: Path, st: os.stat_result) -> str:
    key = (os.path.realpath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        if len(_HASHES) > 4096:
            _HASHES.clear()
        _HASHES[key] = sha256_file(path)
    return _HASHES[key]


def commit_record(output: str | Path, with_files: Iterable[str | Path] = ()) -> dict[str, dict]:
    """``{file name: {"sha256", "bytes"}}`` for ``output`` (when it is a file; a folder output: every
    file inside it, named ``FOLDER/relative/path``) and ``with_files`` (files in the same folder)."""
    output = Path(output)
    record = {}
    if output.is_dir():  # e.g. a save_to_disk dataset: commit_problem checks each file the same way
        for p in sorted(q for q in output.rglob("*") if q.is_file()):
            st = p.stat()
            record[p.relative_to(output.parent).as_posix()] = {"sha256": _sha256(p, st), "bytes": st.st_size}
    for p in [output, *(Path(f) for f in with_files)]:
        if p.parent.resolve() != output.parent.resolve():
            raise ValueError(f"{p} is not beside {output}")
        if p.is_file():
            st = p.stat()
            record[p.name] = {"sha256": _sha256(p, st), "bytes": st.st_size}
    return record


def write_meta(output: str | Path, config: Any, *, with_files: Iterable[str | Path] = (), **extra: Any) -> Path:
    """Write provenance next to ``output``: code version, config, environment, plus ``extra``, and
    the commit record of ``output`` and ``with_files``. Call it after the data is written."""
    from hardneg import __version__

    meta = {
        "hardneg_version": __version__,
        "created_unix": round(time.time(), 3),
        "python": platform.python_version(),
        "config": to_jsonable(config),
        **{k: to_jsonable(v) for k, v in extra.items()},
    }
    committed = commit_record(output, with_files)
    if committed:
        meta[COMMITTED] = committed
    path = meta_path(output)
    write_json(path, meta)
    return path


def commit_problem(output: str | Path, meta: dict) -> str | None:
    """Why the files ``meta`` commits are not the ones on disk (None: they are, or nothing is recorded)."""
    record = meta.get(COMMITTED)
    if not isinstance(record, dict):
        return None
    folder = Path(output).parent
    for name, want in record.items():
        p = folder / name
        try:
            st = p.stat()
        except OSError:
            return f"{name} is missing"
        if not isinstance(want, dict) or st.st_size != want.get("bytes"):
            return f"{name} has {st.st_size} bytes, the meta records {want.get('bytes') if isinstance(want, dict) else '?'}"
        if _sha256(p, st) != want.get("sha256"):
            return f"the sha256 of {name} differs from the meta's"
    return None


def incomplete_message(output: str | Path, why: str) -> str:
    return (f"{output} was not completely written (meta does not match: {why}): rerun the command that "
            f"wrote it (or, if you changed the file on purpose, delete {meta_path(output)})")


def read_meta(output: str | Path, verify: bool = True) -> dict | None:
    """The meta file of ``output`` as a dict, or None when it is missing or unreadable.

    ``verify``: a meta whose commit record does not match the files on disk raises HardnegError
    (the data was replaced after it, or the run died between the data and the meta)."""
    try:
        meta = read_json(meta_path(output))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict):
        return None
    if verify:
        why = commit_problem(output, meta)
        if why:
            raise HardnegError(incomplete_message(output, why))
    return meta


def is_committed(output: str | Path) -> bool:
    """True when ``output`` exists and its meta commits exactly its bytes (resume logic: a finished output).

    A meta without a commit record (written before there were any) counts as committed."""
    if not Path(output).exists():
        return False
    try:
        meta = read_meta(output, verify=False)
    except HardnegError:
        return False
    return meta is not None and commit_problem(output, meta) is None
