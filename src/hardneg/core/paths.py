"""The one cache root: ``cache_dir`` if given, else ``$HARDNEG_CACHE``, else ``~/.cache/hardneg``.

Layout below it: ``embeddings/`` (encode), ``pools/`` (teachers), ``shards/`` (scale), ``onnx/``
(ONNX exports), ``datasets/`` (downloads), ``file_hashes.json`` (memoised weight hashes).
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """``cache_dir`` if given, else ``$HARDNEG_CACHE``, else ``~/.cache/hardneg`` (``~`` expanded).

    >>> str(cache_root("/tmp/c"))
    '/tmp/c'
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("HARDNEG_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "hardneg"
