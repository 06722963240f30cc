"""The output guard: every command that writes checks its outputs here, before any work starts.

``check_output(path, inputs=..., kind="file"|"dir")`` refuses (``HardnegError``: the CLI prints one
``error:`` line and exits 2) an empty path, an output that is one of the run's inputs (same resolved
path or same inode; for an input folder, any file inside it), a folder where a file is expected (or
a file where a folder is), a device, fifo or socket (hardneg replaces outputs by rename: it would
swap ``/dev/null`` for a regular file), and a parent folder it cannot create or write into.
``exists`` says what an existing output means: ``"overwrite"`` (rerunning the command replaces its
result), ``"ours"`` (a folder is reused only if it holds one of ``markers``, i.e. a previous run of the
same command; anything else needs ``force``) or ``"refuse"`` (only with ``force``).

``output_lock(path)`` holds ``OUTPUT.lock`` (created with ``O_CREAT|O_EXCL``, pid + host + argv
inside) for the run, so a second run on the same output refuses, naming the lock and its pid; a lock
whose pid is not alive on this host is stale and taken over with a warning. ``guard_output`` does
both, then removes our own stale temporary files (``atomic_path``'s ``.NAME.XXXXXXXX.tmp``) beside
the output: under the lock no other run writes there, so any older one is a killed run's leftover.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import stat
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterable, Iterator

from hardneg.core.errors import HardnegError

log = logging.getLogger(__name__)

LOCK_SUFFIX = ".lock"
EXISTS = ("overwrite", "ours", "refuse")
KINDS = ("file", "dir")
MAX_INPUT_FILES = 10_000  # files listed per input folder (a dataset folder holds a handful)
_TMP_RE = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")  # tempfile.mkstemp(prefix=".NAME.", suffix=".tmp")


def _kind_of(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a fifo"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _same(a: Path, b: Path) -> bool:
    """Same file: equal resolved paths, or the same inode (hard links, bind mounts)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _input_files(inputs: Iterable[str | Path]) -> list[tuple[Path, str]]:
    """(path to compare, how it is an input) for each input, each file of an input folder and each
    input file's meta file (``X.meta.json``: read by the commands that take ``X``)."""
    out = []
    for given in inputs:
        if given is None or str(given) == "":
            continue
        p = Path(given).expanduser()
        out.append((p, str(p)))
        if p.is_dir():
            for k, f in enumerate(q for q in p.rglob("*") if q.is_file()):
                if k >= MAX_INPUT_FILES:
                    break
                out.append((f, f"{f}, a file of {p}"))
        else:
            out.append((p.with_name(p.name + ".meta.json"), f"{p.name}.meta.json, the meta file of {p}"))
    return out


def check_output(path: str | Path | None, *, inputs: Iterable[str | Path] = (), kind: str = "file",
                 also: Iterable[str | Path] = (), exists: str = "overwrite", markers: Iterable[str] = (),
                 force: bool = False, flag: str = "--output") -> Path:
    """Check that ``path`` (and the files ``also`` written beside it) may be written; returns it.

    ``inputs``: every file or folder the run reads. ``kind``: ``"file"`` or ``"dir"``. Creates the
    parent folder if missing and proves it writable with a real temporary file.

    >>> import tempfile; d = Path(tempfile.mkdtemp()); (d / "corpus.jsonl").write_text("{}")
    2
    >>> check_output(d / "out" / "neg.jsonl", inputs=[d / "corpus.jsonl"]).name
    'neg.jsonl'
    >>> check_output(d / "corpus.jsonl", inputs=[d])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    hardneg.core.errors.HardnegError: --output .../corpus.jsonl is an input of this run (..., a file of ...); choose another path
    """
    if kind not in KINDS or exists not in EXISTS:
        raise ValueError(f"kind {kind!r} / exists {exists!r}")
    if path is None or str(path).strip() == "":
        raise HardnegError(f"{flag} is empty: give a {'file' if kind == 'file' else 'folder'} path")
    path = Path(path).expanduser()
    outputs = [path, *(Path(a) for a in also)]
    files = _input_files(inputs)
    for out in outputs:
        for f, what in files:
            if _same(out, f):
                raise HardnegError(f"{flag} {out} is an input of this run ({what}); choose another path")
    _check_kind(path, kind, flag)
    for out in outputs[1:]:
        _check_kind(out, "file", flag, beside=path)
    _check_existing(path, kind, exists, tuple(markers), force, flag)
    _check_writable(path.parent if kind == "file" or not path.exists() else path, path, flag)
    return path


def _check_kind(path: Path, kind: str, flag: str, beside: Path | None = None) -> None:
    try:
        mode = os.stat(path).st_mode  # follows symlinks: a link to /dev/null is a device
    except (FileNotFoundError, NotADirectoryError):
        return  # not there yet (a parent that is a file: reported when the folder is created)
    except OSError as e:
        raise HardnegError(f"{flag} {path}: cannot inspect it ({e.strerror})") from None
    which = f"{path} (written beside {beside})" if beside else str(path)
    if kind == "file" and not stat.S_ISREG(mode):
        got = _kind_of(mode)
        hint = f"give a file path, e.g. {path / 'out.jsonl'}" if got == "a folder" else (
            "hardneg replaces its outputs by rename and would replace it with a regular file; give a file path")
        raise HardnegError(f"{flag} {which} is {got}, not a file: {hint}")
    if kind == "dir" and not stat.S_ISDIR(mode):
        raise HardnegError(f"{flag} {which} is {'a file' if stat.S_ISREG(mode) else _kind_of(mode)}, "
                           "not a folder: give a folder path")


def _check_existing(path: Path, kind: str, exists: str, markers: tuple[str, ...], force: bool, flag: str) -> None:
    if force or exists == "overwrite" or not path.exists():
        return
    if kind == "dir":
        entries = [e.name for e in path.iterdir() if not e.name.endswith(LOCK_SUFFIX)]
        if not entries or (exists == "ours" and any((path / m).exists() for m in markers)):
            return
        if exists == "ours":
            raise HardnegError(f"{flag} {path} is a folder that holds other files ({', '.join(sorted(entries)[:3])}"
                               f"{', ...' if len(entries) > 3 else ''}), not an output of this command: "
                               "choose a new or empty folder, or pass --force to write into it")
    raise HardnegError(f"{flag} {path} already exists: pass --force to overwrite it, or choose another path")


def _check_writable(folder: Path, path: Path, flag: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise HardnegError(f"{flag} {path}: cannot create folder {folder} ({e.strerror or e})") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise HardnegError(f"{flag} {path}: folder {folder} is not writable ({e.strerror or e})") from None


def check_distinct(outputs: dict[str, str | Path | None]) -> None:
    """Two outputs of one run (``{flag: path}``) must not be the same file."""
    given = [(f, Path(p).expanduser()) for f, p in outputs.items() if p is not None and str(p) != ""]
    for i, (fa, a) in enumerate(given):
        for fb, b in given[i + 1:]:
            if _same(a, b):
                raise HardnegError(f"{fa} and {fb} are the same file ({a}): give each its own path")


# ---------------------------------------------------------------------------------------- the lock
def lock_path(output: str | Path) -> Path:
    """``out/neg.jsonl`` -> ``out/neg.jsonl.lock``; a folder ``runs/ft`` -> ``runs/ft.lock``."""
    output = Path(output)
    return output.with_name(output.name + LOCK_SUFFIX)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    except (OverflowError, ValueError):
        return False
    return True


def _read_lock(path: Path) -> dict | None:
    """The lock's content; None while its creator has not written it yet (or it is not ours)."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) and isinstance(obj.get("pid"), int) else None


def _stale(holder: dict | None, path: Path) -> bool:
    if holder is None:  # empty or garbled: stale only once it is clearly not being written right now
        with contextlib.suppress(OSError):
            return time.time() - path.stat().st_mtime > 60
        return False
    return holder.get("host") == socket.gethostname() and not pid_alive(holder["pid"])


@contextlib.contextmanager
def output_lock(output: str | Path, flag: str = "--output") -> Iterator[Path]:
    """Hold ``OUTPUT.lock`` for the block; a live holder -> HardnegError naming the lock and its pid."""
    path = lock_path(output)
    token = uuid.uuid4().hex
    content = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "token": token,
                          "started_unix": round(time.time(), 3), "argv": sys.argv})
    for _attempt in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = _read_lock(path)
            except FileNotFoundError:
                continue  # released meanwhile: try again
            if not _stale(holder, path):
                who = (f"pid {holder['pid']} on {holder.get('host', '?')}" if holder
                       else "a run that is starting")
                raise HardnegError(f"{flag} {output} is being written by another run ({who}, lock {path}): "
                                   "wait for it to finish, or delete the lock if that run is gone") from None
            again = None
            with contextlib.suppress(FileNotFoundError):
                again = _read_lock(path)
            if again != holder:  # someone took it over between the two reads
                continue
            who = f"pid {holder['pid']} on {holder['host']} is not running" if holder else "empty lock"
            log.warning("taking over the stale lock %s (%s)", path, who)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            continue
        except OSError as e:
            raise HardnegError(f"{flag} {output}: cannot create the lock {path} ({e.strerror or e})") from None
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(content)
        break
    else:
        raise HardnegError(f"{flag} {output}: could not take the lock {path} (another run keeps taking it)")
    try:
        yield path
    finally:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(path.read_text(encoding="utf-8")).get("token") == token:
                path.unlink()


# ------------------------------------------------------------------------------ stale temp files
def clean_stale_temps(output: str | Path, *, also: Iterable[str | Path] = (), before: float | None = None,
                      recursive: bool = False) -> list[Path]:
    """Remove ``atomic_path``'s leftovers of ``output`` (and ``also``, and ``output``'s meta) older
    than ``before`` (default: now); for a folder output, every one inside it (``recursive``: in
    subfolders too). Call it only while holding the output's lock. Returns the removed paths."""
    before = time.time() if before is None else before
    output = Path(output)
    names = [output, output.with_name(output.name + ".meta.json"), *(Path(a) for a in also)]
    found: list[Path] = []
    for p in names:
        pat = re.compile(r"^" + re.escape(f".{p.name}.") + r"[a-z0-9_]{8}" + re.escape(".tmp") + r"$")
        if p.parent.is_dir():
            found += [q for q in p.parent.iterdir() if pat.match(q.name)]
    if output.is_dir():
        found += [q for q in (output.rglob(".*.tmp") if recursive else output.glob(".*.tmp")) if _TMP_RE.match(q.name)]
    removed = []
    for q in dict.fromkeys(found):
        with contextlib.suppress(OSError):
            if q.is_file() and not q.is_symlink() and q.stat().st_mtime < before:
                q.unlink()
                removed.append(q)
    for q in removed:
        log.warning("removed %s, left by an interrupted earlier run", q)
    return removed


@contextlib.contextmanager
def guard_output(path: str | Path | None, *, inputs: Iterable[str | Path] = (), kind: str = "file",
                 also: Iterable[str | Path] = (), exists: str = "overwrite", markers: Iterable[str] = (),
                 force: bool = False, flag: str = "--output", recursive: bool = False) -> Iterator[Path]:
    """``check_output`` + ``output_lock`` + ``clean_stale_temps``, for the block the run writes in.

    ``None`` (an optional output not asked for) guards nothing and yields None."""
    if path is None:
        yield None
        return
    also = list(also)
    path = check_output(path, inputs=inputs, kind=kind, also=also, exists=exists, markers=markers,
                        force=force, flag=flag)
    with output_lock(path, flag) as lock:
        started = os.stat(lock).st_mtime
        clean_stale_temps(path, also=also, before=started, recursive=recursive)
        yield path
