"""The one loader of the packaged recipes folder (``hardneg/recipes/*.toml``) and of recipe files.

Two kinds live there: training recipes (``cpu-small.toml``, ``nv-retriever-v1.toml``: ``hardneg train
--config NAME``) and ablation recipes (``ablation-<name>.toml``: ``hardneg ablate --config <name>``).
Asking one command for the other's recipe is an error that names the right command.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

import tomllib

from hardneg.core.errors import DataError, HardnegError

KINDS = ("train", "ablation")
_COMMAND = {"train": "hardneg train --config {}", "ablation": "hardneg ablate --config {}"}


def _folder():
    return resources.files("hardneg") / "recipes"


def packaged(kind: str) -> list[str]:
    """Names of the packaged recipes of ``kind``, as their command takes them.

    >>> ablations = packaged("ablation")
    >>> "quick" in ablations, "ablation-quick" in ablations, "cpu-small" in packaged("train")
    (True, False, True)
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    names = sorted(r.name.removesuffix(".toml") for r in _folder().iterdir() if r.name.endswith(".toml"))
    if kind == "ablation":
        return [n.removeprefix("ablation-") for n in names if n.startswith("ablation-")]
    return [n for n in names if not n.startswith("ablation-")]


def _packaged_file(name: str, kind: str):
    stem = f"ablation-{name.removeprefix('ablation-')}" if kind == "ablation" else name
    res = _folder() / f"{stem}.toml"
    return res if name in packaged(kind) or (kind == "ablation" and name.removeprefix("ablation-") in packaged(kind)) \
        else None


def find_recipe(spec: str | Path, kind: str) -> tuple[str, str]:
    """(label, TOML text) of a recipe file path or a packaged recipe name of ``kind``.

    A packaged name of the other kind is a HardnegError naming the command that runs it.
    """
    path = Path(spec)
    if path.is_file():
        return str(path), path.read_text(encoding="utf-8")
    res = _packaged_file(str(spec), kind)
    if res is not None:
        return str(res), res.read_text(encoding="utf-8")
    other = KINDS[1 - KINDS.index(kind)]
    res = _packaged_file(str(spec), other)
    if res is not None:
        name = str(spec).removeprefix("ablation-") if other == "ablation" else str(spec)
        raise HardnegError(f"{spec!r} is a packaged {other} recipe, not a {kind} recipe: run "
                           f"'{_COMMAND[other].format(name)}'")
    raise DataError(path, None, f"{kind} recipe not found",
                    f"pass a TOML file or one of the packaged {kind} recipes: {', '.join(packaged(kind))}")


def load_recipe_toml(spec: str | Path, kind: str) -> tuple[str, dict[str, Any], str]:
    """(label, parsed table, text) of a recipe; invalid TOML is a DataError naming its line."""
    label, text = find_recipe(spec, kind)
    try:
        return label, tomllib.loads(text), text
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        raise DataError(label, int(m.group(1)) if m else None, f"invalid TOML: {e}") from None
