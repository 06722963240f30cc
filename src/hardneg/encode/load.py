"""``load_encoder(spec, backend=...)``: the one place that picks a backend (so no backend imports
its dispatcher back).
"""

from __future__ import annotations

import logging
from pathlib import Path

from hardneg.core.errors import HardnegError
from hardneg.core.hardware import cpu_has_bf16
from hardneg.encode.base import ENCODER_BACKENDS, POOLINGS, Encoder, n_cores
from hardneg.encode.models import resolve_model

log = logging.getLogger(__name__)


def load_encoder(spec: str, *, backend: str = "torch", max_length: int | None = None, batch_size: int = 32,
                 query_prompt: str = "", passage_prompt: str = "", pooling: str | None = None,
                 normalize: bool = True, device: str | None = None,
                 cache_dir: str | Path | None = None) -> Encoder:
    """Load ``spec`` (alias / path / hub id) as an Encoder.

    ``pooling=None`` uses the model's own sentence-transformers modules (torch backend) or its
    pooling config (ONNX); ``pooling="mean"|"cls"|"last"`` runs plain transformers ``AutoModel``.
    """
    if backend not in ENCODER_BACKENDS:
        raise HardnegError(f"unknown backend {backend!r}: choose one of {', '.join(ENCODER_BACKENDS)}")
    if pooling is not None and pooling not in POOLINGS:
        raise HardnegError(f"unknown pooling {pooling!r}: choose one of {', '.join(POOLINGS)}")
    if batch_size < 1 or (max_length is not None and max_length < 1):
        raise HardnegError("batch_size and max_length must be positive integers")
    path = resolve_model(spec)
    opts = dict(max_length=max_length, batch_size=batch_size, query_prompt=query_prompt,
                passage_prompt=passage_prompt, normalize=normalize, cache_dir=cache_dir)
    if backend.startswith("onnx"):
        from hardneg.encode.onnx_backend import OnnxEncoder

        return OnnxEncoder(spec, path, quantize=backend == "onnx-int8", pooling=pooling, **opts)
    import torch

    torch.set_num_threads(n_cores())
    from hardneg.encode.torch_backend import HFEncoder, STEncoder

    bf16 = backend == "torch-bf16"
    if bf16 and (device or "cpu") == "cpu" and not torch.cuda.is_available() and cpu_has_bf16() is False:
        log.warning("backend torch-bf16 on a CPU without bf16 instructions (avx512_bf16 / amx_bf16): bf16 is "
                    "emulated there and far slower than fp32; use --backend torch")
    if pooling is None:
        return STEncoder(spec, path, device=device, bf16=bf16, **opts)
    return HFEncoder(spec, path, pooling=pooling, device=device, bf16=bf16, **opts)
