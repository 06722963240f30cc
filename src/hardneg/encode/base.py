"""The ``Encoder`` protocol and what every backend shares: pooling, normalisation, length-sorted batches.

An Encoder is anything with ``name``, ``fingerprint``, ``encode_queries`` / ``encode_passages``
returning float32 (n, d) arrays. ``BatchEncoder`` gives a backend prompts, length-sorted batches (original
order restored) and per-batch progress; the backends are ``torch_backend`` and ``onnx_backend``.
"""

from __future__ import annotations

import os
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np

ENCODER_BACKENDS = ("torch", "torch-bf16", "onnx", "onnx-int8")  # torch-bf16: bf16 autocast (fast on CPUs with AVX512-BF16 / AMX)
POOLINGS = ("mean", "cls", "last")


@runtime_checkable
class Encoder(Protocol):
    """What every stage needs from an embedding model."""

    name: str
    fingerprint: str  # identifies the weights + settings that produce the vectors

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray: ...


def n_cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """(B, L, d) token states + (B, L) attention mask -> (B, d) float32.

    ``last`` takes the last position whose mask is 1, so it works with left or right padding:

    >>> h = np.arange(6, dtype=np.float32).reshape(1, 3, 2)
    >>> pool(h, np.array([[1, 1, 0]]), "mean").tolist(), pool(h, np.array([[0, 1, 1]]), "last").tolist()
    ([[1.0, 2.0]], [[4.0, 5.0]])
    """
    hidden = hidden.astype(np.float32, copy=False)
    m = mask.astype(np.float32)
    if mode == "mean":
        return (hidden * m[:, :, None]).sum(1) / np.clip(m.sum(1, keepdims=True), 1e-9, None)
    if mode == "cls":
        return hidden[:, 0].copy()
    if mode == "last":
        last = mask.shape[1] - 1 - np.argmax(mask[:, ::-1] > 0, axis=1)
        return hidden[np.arange(len(hidden)), last].copy()
    raise ValueError(f"pooling must be one of {POOLINGS}, got {mode!r}")


def l2_normalize(x: np.ndarray) -> np.ndarray:
    return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)


def length_order(texts: Sequence[str]) -> np.ndarray:
    """Indices sorting ``texts`` longest first (stable), so a batch holds similar lengths.

    >>> length_order(["a", "ccc", "bb", "ddd"]).tolist()
    [1, 3, 2, 0]
    """
    return np.argsort([-len(t) for t in texts], kind="stable")


class BatchEncoder:
    """Shared batching: prompts, length-sorted batches (original order restored), progress.

    Subclasses set ``name``, ``fingerprint``, ``dim`` and implement ``embed_batch(texts, prompt)``.
    """

    name: str
    fingerprint: str
    dim: int
    batch_size: int = 32
    query_prompt: str = ""
    passage_prompt: str = ""
    progress_callback: Callable[[int], None] | None = None  # set by encode_cached for its bar

    def embed_batch(self, texts: list[str], prompt: str, kind: str = "query") -> np.ndarray:
        """Embed one batch; ``kind`` is "query" or "document" (models may treat them differently)."""
        raise NotImplementedError

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.query_prompt, "query")

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.passage_prompt, "document")

    def _encode(self, texts: Sequence[str], prompt: str, kind: str = "query") -> np.ndarray:
        order = length_order(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for s in range(0, len(texts), self.batch_size):
            idx = order[s:s + self.batch_size]
            out[idx] = self.embed_batch([texts[i] for i in idx], prompt, kind)
            if self.progress_callback is not None:
                self.progress_callback(len(idx))
        return out


def encoder_dim(enc) -> int:
    """The encoder's vector size: its ``dim``, else measured on one text."""
    d = getattr(enc, "dim", None)
    return int(d) if d else int(np.asarray(enc.encode_passages(["dim probe"])).shape[1])
