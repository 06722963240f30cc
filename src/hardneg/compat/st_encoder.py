"""An already loaded ``SentenceTransformer`` as a hardneg ``Encoder`` (no reload, no second copy).

``encode_queries`` / ``encode_passages`` call the model's own ``encode_query`` / ``encode_document``
with the prompt arguments sentence-transformers' ``mine_hard_negatives`` passes (``prompt`` wins over
``prompt_name``), normalised float32 — the vectors the peer computes. ``fingerprint`` names the
weights and every setting that changes the vectors, for the embedding and pool caches.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from typing import Sequence

import numpy as np

from hardneg.encode.models import settings_fingerprint

log = logging.getLogger(__name__)


def weights_digest(module) -> str | None:
    """sha256 over a torch module's ``state_dict`` (names, dtypes, shapes, bytes); None when ``module``
    has no state dict (a fake or remote model). Costs one pass over the weights (~0.1 s per 100 MB)."""
    state = getattr(module, "state_dict", None)
    if not callable(state):
        return None
    try:
        items = state()
    except Exception:  # noqa: BLE001 - not a torch module after all
        return None
    import torch

    h = hashlib.sha256()
    for name, t in items.items():
        arr = t.detach().cpu().contiguous().view(-1)
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\n".encode())
        if arr.numel():
            h.update(arr.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def model_name(model) -> str:
    """A display name: the model card's base model, else the folder it was loaded from, else its class."""
    card = getattr(model, "model_card_data", None)
    name = getattr(card, "base_model", None) or getattr(card, "model_name", None)
    if not name:
        name = getattr(model, "name_or_path", None) or getattr(getattr(model, "tokenizer", None), "name_or_path", None)
    return str(name or type(model).__name__)


class LoadedSTEncoder:
    """``model`` (a loaded ``SentenceTransformer``) as an ``Encoder``.

    ``query_prompt`` / ``query_prompt_name`` and ``corpus_prompt`` / ``corpus_prompt_name`` go to
    ``encode_query`` / ``encode_document`` as ``prompt`` / ``prompt_name``. ``fingerprinted=False``
    skips hashing the weights (the caller's cache is throwaway): the fingerprint is then unique to
    this object.
    """

    def __init__(self, model, *, batch_size: int = 32, query_prompt: str | None = None,
                 query_prompt_name: str | None = None, corpus_prompt: str | None = None,
                 corpus_prompt_name: str | None = None, progress: bool = False, fingerprinted: bool = True):
        self.model, self.batch_size, self.progress = model, int(batch_size), progress
        self.query_args = {"prompt": query_prompt, "prompt_name": query_prompt_name}
        self.corpus_args = {"prompt": corpus_prompt, "prompt_name": corpus_prompt_name}
        self.name = model_name(model)
        get_dim = getattr(model, "get_embedding_dimension", None) or getattr(model, "get_sentence_embedding_dimension",
                                                                              None)
        self.dim = int(get_dim()) if callable(get_dim) and get_dim() else None
        weights = weights_digest(model) if fingerprinted else None
        if weights is None:
            if fingerprinted:
                log.warning("model %s has no state_dict to fingerprint: cached embeddings are keyed by its name and "
                            "settings only (a changed model with the same name would reuse them)", self.name)
            weights = f"name:{self.name}" if fingerprinted else f"object:{uuid.uuid4().hex}"
        self.fingerprint = settings_fingerprint(
            weights, adapter="st-loaded", query=self.query_args, corpus=self.corpus_args,
            prompts=dict(getattr(model, "prompts", None) or {}), max_seq_length=getattr(model, "max_seq_length", None),
            normalize=True)

    def _encode(self, fn, texts: Sequence[str], args: dict) -> np.ndarray:
        out = fn(list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
                 show_progress_bar=self.progress and len(texts) > 10 * self.batch_size, **args)
        return np.asarray(out, dtype=np.float32)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(self.model.encode_query, texts, self.query_args)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(self.model.encode_document, texts, self.corpus_args)
