"""``load_data(spec, split)``: one entry point for every supported input.

    BEIR folder      ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv`` (``hardneg.data.beir``)
    dataset name     ``scifact``, ``nfcorpus`` ... found locally or downloaded (``resolve_data``)
    pairs JSONL      FlagEmbedding style ``{"query": str, "pos": [str], "neg": [str]}`` (``hardneg.data.tables``)
    table            a parquet file, a HF ``datasets`` folder (``save_to_disk``), a hub-style folder of
                     parquet / JSONL files, or a ``datasets.Dataset`` / ``DatasetDict`` object, with
                     anchor/positive columns (``anchor_column`` / ``positive_column``; ``hardneg.data.tables``)
"""

from __future__ import annotations

from pathlib import Path

from hardneg.core.errors import DataError
from hardneg.data.download import find_or_download
from hardneg.data.beir import load_beir
from hardneg.data.tables import (from_dataset, hub_files, is_pairs_jsonl, load_hub_folder, load_pairs_jsonl,
                                 load_table)
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


def load_data(spec, split: str = "train", *, anchor_column: str | None = None,
              positive_column: str | None = None) -> RetrievalData:
    """Load a BEIR folder, a dataset name, a pairs JSONL, a parquet file, a HF ``datasets`` folder
    (``save_to_disk`` or hub-style) or a ``datasets.Dataset`` / ``DatasetDict``.

    ``anchor_column`` / ``positive_column`` name a table's text columns (default: found by name, else
    the first two columns; see ``hardneg.data.tables``); they do not apply to BEIR folders.
    """
    columns = {"anchor_column": anchor_column, "positive_column": positive_column}
    if not isinstance(spec, (str, Path)):  # a datasets.Dataset / DatasetDict object
        return from_dataset(spec, split, **columns)
    path = resolve_data(spec)
    if path.is_dir():
        if (path / "corpus.jsonl").exists():
            _no_columns(path, columns)
            return load_beir(path, split)
        if any((path / f).exists() for f in ("dataset_info.json", "state.json", "dataset_dict.json")):
            return load_table(path, split, **columns)
        subs = sorted(p.parent.name for p in path.glob("*/corpus.jsonl"))
        if subs:  # e.g. cqadupstack: one BEIR set per forum
            raise DataError(path, None, "this folder holds several BEIR sets",
                            f"pass one of them: {', '.join(str(path / s) for s in subs)}")
        if hub_files(path):
            return load_hub_folder(path, split, **columns)
        raise DataError(path, None, "not a BEIR folder (no corpus.jsonl) nor a HF datasets folder",
                        "pass a BEIR folder, a .jsonl pairs file, a .parquet file, a save_to_disk folder or a "
                        "folder of .parquet/.jsonl files")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        if suffix == ".jsonl" and (anchor_column or positive_column or not is_pairs_jsonl(path)):
            return load_table(path, split, **columns)  # a JSONL table (anchor/positive...), not query/pos pairs
        return load_pairs_jsonl(path, split)
    if suffix == ".parquet":
        return load_table(path, split, **columns)
    raise DataError(path, None, f"unknown data file type {suffix!r}", "use .jsonl (query/pos/neg) or .parquet")


def _no_columns(path: Path, columns: dict) -> None:
    given = [f"--{k.replace('_', '-')}" for k, v in columns.items() if v]
    if given:
        raise DataError(path, None, f"{' / '.join(given)} name table columns; a BEIR folder has none",
                        "drop them (BEIR queries and passages are read by id)")
