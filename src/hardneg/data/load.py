"""``load_data(spec, split)``: one entry point for every supported input.

    BEIR folder      ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv`` (``hardneg.data.beir``)
    dataset name     ``scifact``, ``nfcorpus`` ... found locally or downloaded (``resolve_data``)
    pairs JSONL      FlagEmbedding style ``{"query": str, "pos": [str], "neg": [str]}`` (``hardneg.data.tables``)
    table            a parquet file or a HF ``datasets`` folder (``save_to_disk``) with query/positive columns
"""

from __future__ import annotations

from pathlib import Path

from hardneg.core.errors import DataError
from hardneg.data.download import find_or_download
from hardneg.data.beir import load_beir
from hardneg.data.tables import load_pairs_jsonl, load_table
from hardneg.data.types import RetrievalData


def resolve_data(spec: str | Path) -> Path:
    """An existing path as is; else a known dataset name, found locally or downloaded.

    Lookup order for a name: ``$HARDNEG_DATA_DIR/NAME``, ``./shared/data/NAME``,
    ``../shared/data/NAME``, the download cache (``$HARDNEG_CACHE/datasets/NAME``); then download.
    """
    path = Path(spec).expanduser()
    if path.exists():
        return path
    return find_or_download(str(spec))


def load_data(spec: str | Path, split: str = "train") -> RetrievalData:
    """Load a BEIR folder, a dataset name, a pairs JSONL, a parquet file or a HF ``datasets`` folder."""
    path = resolve_data(spec)
    if path.is_dir():
        if (path / "corpus.jsonl").exists():
            return load_beir(path, split)
        if any((path / f).exists() for f in ("dataset_info.json", "state.json", "dataset_dict.json")):
            return load_table(path, split)
        subs = sorted(p.parent.name for p in path.glob("*/corpus.jsonl"))
        if subs:  # e.g. cqadupstack: one BEIR set per forum
            raise DataError(path, None, "this folder holds several BEIR sets",
                            f"pass one of them: {', '.join(str(path / s) for s in subs)}")
        raise DataError(path, None, "not a BEIR folder (no corpus.jsonl) nor a HF datasets folder",
                        "pass a BEIR folder, a .jsonl pairs file, a .parquet file or a save_to_disk folder")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        return load_pairs_jsonl(path, split)
    if suffix == ".parquet":
        return load_table(path, split)
    raise DataError(path, None, f"unknown data file type {suffix!r}", "use .jsonl (query/pos/neg) or .parquet")
