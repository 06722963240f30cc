"""Provenance: the ``*.meta.json`` written next to every output, by one function for every command.

A meta file holds the hardneg version, the creation time, the Python version, the stage's config
and whatever the stage adds (fingerprints, data hash, seed, timings, stats).
"""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

from hardneg.core.files import read_json, to_jsonable, write_json


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


def read_meta(output: str | Path) -> dict | None:
    """The meta file of ``output`` as a dict, or None when it is missing or unreadable."""
    try:
        meta = read_json(meta_path(output))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None
