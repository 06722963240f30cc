"""PyTorch adapters: sentence-transformers models and plain transformers ``AutoModel`` + pooling.

Both share ``BatchEncoder``'s length-sorted batching; use ``hardneg.encode.load_encoder``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from hardneg.core.errors import HardnegError
from hardneg.core.fingerprint import weights_fingerprint
from hardneg.encode.base import BatchEncoder, l2_normalize, pool
from hardneg.encode.models import kind_lengths, lengths_key, read_st_config, settings_fingerprint

log = logging.getLogger(__name__)


def backend_name(bf16: bool) -> str:
    return "torch-bf16" if bf16 else "torch"


def autocast(device: str, bf16: bool):
    """bf16 autocast on ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:0"``) when ``bf16``, else a no-op context:
    matmuls run in bf16, weights stay fp32, the embeddings come back as fp32."""
    import contextlib

    import torch

    return torch.autocast(str(device).split(":")[0], dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


class STEncoder(BatchEncoder):
    """sentence-transformers adapter: the model's own modules (pooling, custom heads, Normalize).

    Prompts are passed as sentence-transformers prompts (so ``include_prompt=False`` pooling works).
    """

    def __init__(self, spec: str, path: str, *, max_length: int | None = None, batch_size: int = 32,
                 query_prompt: str = "", passage_prompt: str = "", normalize: bool = True,
                 device: str | None = None, cache_dir: str | Path | None = None, bf16: bool = False):
        from sentence_transformers import SentenceTransformer

        try:
            self.model = SentenceTransformer(path, device=device)
        except Exception as e:  # noqa: BLE001 - any load failure is the user's model spec
            raise HardnegError(f"could not load model {spec!r} with sentence-transformers from {path}: "
                               f"{type(e).__name__}: {e}") from None
        first = self.model[0] if len(self.model) else None
        saved_kinds = bool(getattr(first, "query_length", None) or getattr(first, "document_length", None))
        if max_length:
            # an explicit length applies to both kinds (over any per-kind lengths the model saved)
            self.model.max_seq_length = max_length
            if hasattr(first, "query_length"):
                first.query_length = first.document_length = None
        self.lengths = kind_lengths(max_length, self.model.max_seq_length, getattr(first, "query_length", None),
                                    getattr(first, "document_length", None))
        self.name, self.path, self.batch_size, self.bf16 = spec, path, batch_size, bf16
        self.query_prompt, self.passage_prompt, self.normalize = query_prompt, passage_prompt, normalize
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.fingerprint = settings_fingerprint(
            weights_fingerprint(path, cache_dir), adapter="st", backend=backend_name(bf16),
            max_length=self.model.max_seq_length, query_prompt=query_prompt, passage_prompt=passage_prompt,
            pooling=None, normalize=normalize, **lengths_key(self.lengths, self.model.max_seq_length, saved_kinds))

    def embed_batch(self, texts: list[str], prompt: str, kind: str = "query") -> np.ndarray:
        # An explicit prompt wins; otherwise the model's own saved prompt for this kind (a model
        # trained by hardneg stores its query/passage prefixes, masked out of pooling, and
        # per-kind max lengths): encode_query / encode_document semantics.
        prompt_name = None if prompt or kind not in (self.model.prompts or {}) else kind
        with autocast(self.model.device.type, self.bf16):
            emb = self.model.encode(texts, batch_size=len(texts), prompt=prompt or None, prompt_name=prompt_name,
                                    task=kind, normalize_embeddings=self.normalize, convert_to_tensor=True,
                                    show_progress_bar=False)
        emb = emb.float().cpu().numpy()
        return np.asarray(emb, dtype=np.float32)


def load_tokenizer(path: Path, spec: str):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path))
    except Exception as e:  # noqa: BLE001
        raise HardnegError(f"could not load the tokenizer of model {spec!r} from {path}: "
                           f"{type(e).__name__}: {e}") from None


def default_max_length(st: dict, tokenizer, config) -> int:
    """sentence-transformers' max_seq_length if the folder has one, else what the model allows."""
    if st["max_length"]:
        return int(st["max_length"])
    limits = [getattr(config, "max_position_embeddings", None), getattr(tokenizer, "model_max_length", None)]
    limits = [int(x) for x in limits if isinstance(x, int) and 0 < x < 1_000_000]
    return min(limits) if limits else 512


class HFEncoder(BatchEncoder):
    """Plain transformers adapter: ``AutoModel`` last hidden states + mean / cls / last pooling.

    Pooling is done in numpy (``hardneg.encode.pool``), the same code the ONNX backend uses.
    """

    def __init__(self, spec: str, path: str, *, pooling: str, max_length: int | None = None,
                 batch_size: int = 32, query_prompt: str = "", passage_prompt: str = "",
                 normalize: bool = True, device: str | None = None, cache_dir: str | Path | None = None,
                 bf16: bool = False):
        from transformers import AutoModel

        st = read_st_config(path)
        extra = [m for m in st["modules"] if m not in ("Transformer", "Pooling", "Normalize")]
        if extra:
            log.warning("model %s has sentence-transformers modules %s that plain AutoModel pooling "
                        "ignores; use pooling=None to run them", spec, extra)
        self.tokenizer = load_tokenizer(st["transformer_dir"], spec)
        try:
            self.model = AutoModel.from_pretrained(str(st["transformer_dir"])).eval()
        except Exception as e:  # noqa: BLE001
            raise HardnegError(f"could not load model {spec!r} with transformers AutoModel from "
                               f"{st['transformer_dir']}: {type(e).__name__}: {e}") from None
        import torch

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device)
        self.max_length = max_length or default_max_length(st, self.tokenizer, self.model.config)
        self.name, self.path, self.batch_size, self.pooling, self.bf16 = spec, path, batch_size, pooling, bf16
        self.query_prompt, self.passage_prompt, self.normalize = query_prompt, passage_prompt, normalize
        self.dim = int(self.model.config.hidden_size)
        self.fingerprint = settings_fingerprint(
            weights_fingerprint(path, cache_dir), adapter="hf", backend=backend_name(bf16), max_length=self.max_length,
            query_prompt=query_prompt, passage_prompt=passage_prompt, pooling=pooling, normalize=normalize)

    def embed_batch(self, texts: list[str], prompt: str, kind: str = "query") -> np.ndarray:
        import torch

        enc = self.tokenizer([prompt + t for t in texts], padding=True, truncation=True,
                             max_length=self.max_length, return_tensors="pt").to(self.device)
        with torch.inference_mode(), autocast(self.device, self.bf16):
            hidden = self.model(**enc).last_hidden_state  # (B, L, d)
        out = pool(hidden.float().cpu().numpy(), enc["attention_mask"].cpu().numpy(), self.pooling)
        return l2_normalize(out) if self.normalize else out
