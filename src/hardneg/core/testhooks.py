"""Named kill points for the crash tests: ``kill_point(name, detail)`` is a no-op unless
``$HARDNEG_TEST_KILL_AT`` names the point, in which case the process SIGKILLs itself right there
(no ``finally``, no atexit: what ``kill -9`` does).

``HARDNEG_TEST_KILL_AT`` is ``NAME[:DETAIL][#N]``: die the ``N``-th time (default 1) a point called
``NAME`` is reached whose detail contains ``DETAIL``, e.g. ``atomic.replaced:neg.jsonl`` (the data
file renamed into place, its meta not yet written) or ``encode.chunk#2``. With
``$HARDNEG_TEST_KILL_LOG`` set to a file, every point reached is appended to it as
``NAME:DETAIL`` (one line each), so a test can list the points of an uninterrupted run and then
kill at each. Points: ``atomic.written`` / ``atomic.replaced`` (``core.files``, detail: file
name), ``encode.chunk`` (``encode.cache``, before a chunk is encoded), ``shards.shard``
(``scale.shards``, before a shard), ``mine.candidates`` (a teacher's pool fetched), ``mine.query``.
"""

from __future__ import annotations

import os
import signal

ENV = "HARDNEG_TEST_KILL_AT"
LOG_ENV = "HARDNEG_TEST_KILL_LOG"
_hits: dict[str, int] = {}  # spec -> matching points reached so far in this process


def kill_point(name: str, detail: str = "") -> None:
    """SIGKILL this process if ``$HARDNEG_TEST_KILL_AT`` names this point (else: two dict lookups)."""
    spec, log = os.environ.get(ENV), os.environ.get(LOG_ENV)
    if not spec and not log:
        return
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"{name}:{detail}\n")
    if not spec:
        return
    want, _, nth = spec.partition("#")
    want_name, _, want_detail = want.partition(":")
    if want_name != name or want_detail not in detail:
        return
    _hits[spec] = _hits.get(spec, 0) + 1
    if _hits[spec] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
