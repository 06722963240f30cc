"""ONNX Runtime backend (``--backend onnx`` / ``onnx-int8``): faster CPU encoding of the same model.

The transformer is exported once with ``torch.onnx.export`` (TorchScript exporter, opset 17,
dynamic batch and sequence axes) and, for ``onnx-int8``, dynamically quantised with per-channel
int8 weights and ``reduce_range`` (per-tensor int8 costs too much accuracy on CPUs without VNNI).
Both files are cached under ``<cache>/onnx/<weights fingerprint>/``; pooling and normalisation
run in numpy with the same ``hardneg.encode.pool`` the torch adapter uses.

Only Transformer + Pooling (+ Normalize) models are supported: a model with other
sentence-transformers modules (Dense layers, a custom pooling head) is refused with a message
pointing at ``--backend torch``.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

from hardneg.core.errors import HardnegError
from hardneg.core.files import atomic_path
from hardneg.core.fingerprint import weights_fingerprint
from hardneg.core.paths import cache_root
from hardneg.encode.base import BatchEncoder, l2_normalize, n_cores, pool
from hardneg.encode.models import kind_lengths, lengths_key, read_st_config, settings_fingerprint
from hardneg.encode.torch_backend import default_max_length, load_tokenizer

log = logging.getLogger(__name__)

SUPPORTED_MODULES = ("Transformer", "Pooling", "Normalize")




def export_onnx(model_dir: Path, target: Path, input_names: list[str]) -> Path:
    """Export ``AutoModel`` at ``model_dir`` to ``target`` (outputs ``last_hidden_state`` (B, L, d))."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()

    class LastHidden(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask=None, token_type_ids=None):
            kw = {"attention_mask": attention_mask, "token_type_ids": token_type_ids}
            return self.inner(input_ids=input_ids, **{k: v for k, v in kw.items() if v is not None}).last_hidden_state

    dummy = {n: torch.ones((2, 8), dtype=torch.long) for n in input_names}
    if "token_type_ids" in dummy:
        dummy["token_type_ids"].zero_()
    axes = {n: {0: "batch", 1: "sequence"} for n in [*input_names, "last_hidden_state"]}
    log.info("exporting %s to ONNX (once per weights): %s", model_dir, target)
    with atomic_path(target, ".onnx") as tmp, torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape-dependent Python control flow
        torch.onnx.export(LastHidden(model), (), tmp, kwargs=dummy, input_names=input_names,
                          output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17,
                          dynamo=False)
    return target


def quantize_int8(source: Path, target: Path) -> Path:
    """Dynamic int8 quantisation: per-channel, reduced range, QInt8 weights."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    log.info("quantising %s to int8 (once per weights): %s", source, target)
    with atomic_path(target, ".onnx") as tmp:
        quantize_dynamic(str(source), tmp, per_channel=True, reduce_range=True, weight_type=QuantType.QInt8)
    return target


def onnx_model_path(model_dir: Path, weights: str, input_names: list[str], *, quantize: bool,
                    cache_dir: str | Path | None = None) -> Path:
    """The cached fp32 (or int8) ONNX file for these weights, exporting/quantising when missing."""
    base = cache_root(cache_dir) / "onnx" / weights[:32]
    fp32 = base / "model.onnx"
    if not fp32.is_file():
        export_onnx(model_dir, fp32, input_names)
    if not quantize:
        return fp32
    int8 = base / "model.int8.onnx"
    return int8 if int8.is_file() else quantize_int8(fp32, int8)


class OnnxEncoder(BatchEncoder):
    """ONNX Runtime encoder with the same prompts / max length / pooling semantics as the torch ones."""

    def __init__(self, spec: str, path: str, *, quantize: bool = False, pooling: str | None = None,
                 max_length: int | None = None, batch_size: int = 32, query_prompt: str = "",
                 passage_prompt: str = "", normalize: bool = True, cache_dir: str | Path | None = None):
        import onnxruntime as ort
        from transformers import AutoConfig

        st = read_st_config(path)
        extra = [m for m in st["modules"] if m not in SUPPORTED_MODULES]
        if extra:
            raise HardnegError(f"the ONNX backend supports Transformer + Pooling (+ Normalize) models, but "
                               f"{spec!r} also has {', '.join(extra)}: use --backend torch for this model")
        backend = "onnx-int8" if quantize else "onnx"
        self.tokenizer = load_tokenizer(st["transformer_dir"], spec)
        config = AutoConfig.from_pretrained(str(st["transformer_dir"]))
        self.max_length = max_length or default_max_length(st, self.tokenizer, config)
        self.lengths = kind_lengths(max_length, self.max_length, st["query_length"], st["document_length"])
        self.pooling = pooling or st["pooling"] or "mean"
        self.normalize = normalize or "Normalize" in st["modules"]
        self.input_names = [n for n in ("input_ids", "attention_mask", "token_type_ids")
                            if n in self.tokenizer.model_input_names]
        weights = weights_fingerprint(path, cache_dir)
        try:
            model_path = onnx_model_path(st["transformer_dir"], weights, self.input_names,
                                         quantize=quantize, cache_dir=cache_dir)
        except Exception as e:  # noqa: BLE001 - an architecture the exporter cannot handle
            raise HardnegError(f"could not export model {spec!r} to ONNX ({type(e).__name__}: {e}); "
                               "use --backend torch") from None
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = n_cores()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
        self.name, self.path, self.batch_size, self.model_path = spec, path, batch_size, model_path
        self.query_prompt, self.passage_prompt = query_prompt, passage_prompt
        self.dim = int(config.hidden_size)
        self.fingerprint = settings_fingerprint(
            weights, adapter="onnx", backend=backend, max_length=self.max_length, query_prompt=query_prompt,
            **lengths_key(self.lengths, self.max_length, bool(st["query_length"] or st["document_length"])),
            passage_prompt=passage_prompt, pooling=self.pooling, normalize=self.normalize)

    def embed_batch(self, texts: list[str], prompt: str, kind: str = "query") -> np.ndarray:
        enc = self.tokenizer([prompt + t for t in texts], padding=True, truncation=True,
                             max_length=self.lengths.get(kind, self.max_length), return_tensors="np")
        feeds = {n: np.asarray(enc[n], dtype=np.int64) for n in self.input_names}
        (hidden,) = self.session.run(["last_hidden_state"], feeds)  # (B, L, d)
        out = pool(hidden, feeds["attention_mask"], self.pooling)
        return l2_normalize(out) if self.normalize else out
