"""The one cache root: ``cache_dir`` if given, else ``$HARDNEG_CACHE``, else ``~/.cache/hardneg``.

Layout below it: ``embeddings/`` (encode), ``pools/`` (teachers), ``shards/`` (scale), ``onnx/``
(ONNX exports), ``datasets/`` (downloads), ``file_hashes.json`` (memoised weight hashes).
"""

from __future__ import annotations

import os
from pathlib import Path

from hardneg.core.errors import HardnegError


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """``cache_dir`` if given, else ``$HARDNEG_CACHE``, else ``~/.cache/hardneg`` (``~`` expanded).

    >>> str(cache_root("/tmp/c"))
    '/tmp/c'
    """
    if cache_dir is not None:
        if not str(cache_dir).strip():  # "" would be the working directory
            raise HardnegError("the cache folder is empty: give a folder path (--cache-dir), or leave it out for "
                               "the default ($HARDNEG_CACHE or ~/.cache/hardneg)")
        return Path(cache_dir).expanduser()
    env = os.environ.get("HARDNEG_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "hardneg"
