"""What each command reads, as paths for the output guard (``hardneg.core.outputs``).

Only local paths: a dataset name is looked up where ``load_data`` would find it (never downloaded
here), a model alias or hub id that is not a local folder reads nothing the output could overwrite.
"""

from __future__ import annotations

from pathlib import Path


def data_paths(*specs) -> list[Path]:
    """The folder or file each ``--data`` spec names, or a dataset name's local folders."""
    from hardneg.data.download import local_candidates

    out = []
    for spec in specs:
        if spec is None or str(spec) == "":
            continue
        p = Path(str(spec)).expanduser()
        if p.exists():
            out.append(p)
        elif "/" not in str(spec):
            out += [c for c in local_candidates(str(spec)) if c.exists()]
    return out


def model_paths(*specs) -> list[Path]:
    """Each model / teacher spec that is a local path (``bm25``, aliases and hub ids read no folder we know)."""
    return [Path(str(s)).expanduser() for s in specs if s and Path(str(s)).expanduser().exists()]


def negatives_paths(*paths) -> list[Path]:
    """A negatives file and the judge's audit beside it (the guard adds every input's meta file)."""
    from hardneg.data.negatives import audit_path

    return [q for p in paths if p for q in (Path(p), audit_path(p))]
