"""Decoder LLMs (Mistral / Llama / Qwen2 ...) as bi-directional, mean-pooled embedders with LoRA.

NV-Retriever-v1 = Mistral-7B with the causal mask replaced by bi-directional attention, mean
pooling over the last layer (instruction tokens masked, see ``pooling.py``), LoRA r 16 / alpha 32.

Bi-directional attention: transformers >= 5.2 builds a full (padding-only) mask instead of the
causal one when ``config.is_causal`` is False (``masking_utils.create_causal_mask``). The flag is a
config field, so it is saved in ``config.json`` and ``SentenceTransformer(DIR)`` reloads the model
bi-directional. ``tests/test_decoder.py`` checks the first token's output changes when a later
token changes (impossible under a causal mask).

LoRA: peft adapters injected through sentence-transformers' ``add_adapter``; the output is either
the adapter alone (small; ``SentenceTransformer(DIR)`` loads base + adapter, needs peft) or merged
into the base weights (``merge_lora``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from hardneg.core.errors import HardnegError
from hardneg.training.config import LORA_TARGETS

log = logging.getLogger(__name__)

# Model families whose transformers implementation honours ``config.is_causal = False``.
DECODER_TYPES = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi3")


@dataclass(frozen=True)
class LoraSettings:
    """LoRA hyper-parameters (NV-Retriever: r 16, alpha 32)."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.1
    target_modules: tuple[str, ...] = LORA_TARGETS
    merge: bool = True  # write merged weights (True) or the adapter only (False)

    def __post_init__(self) -> None:
        if self.r < 1 or self.alpha <= 0:
            raise HardnegError(f"LoRA r must be >= 1 and alpha > 0, got r={self.r}, alpha={self.alpha}")
        if not 0 <= self.dropout < 1:
            raise HardnegError(f"LoRA dropout must be in [0, 1), got {self.dropout}")
        if not self.target_modules:
            raise HardnegError("LoRA target_modules is empty", )


def is_decoder(model_path: str) -> bool:
    """True when ``model_path`` holds a causal-LM family model (reads config.json only)."""
    from transformers import AutoConfig

    try:
        cfg = AutoConfig.from_pretrained(model_path)
    except (OSError, ValueError):
        return False
    return getattr(cfg, "model_type", "") in DECODER_TYPES


def make_bidirectional(auto_model: Any) -> None:
    """Switch a loaded decoder to bi-directional attention (config flag + attention modules)."""
    auto_model.config.is_causal = False
    for module in auto_model.modules():
        if hasattr(module, "is_causal") and isinstance(module.is_causal, bool):
            module.is_causal = False


def build_decoder_embedder(model_path: str, *, max_length: int | None = None, dtype: str | None = None,
                           bidirectional: bool = True, device: str | None = None) -> Any:
    """SentenceTransformer = decoder (bi-directional) + mean Pooling (prefix-masked) + Normalize.

    ``dtype``: "bfloat16" on GPUs that have it (the NV-Retriever path), else None (fp32).
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    model_kwargs = {"dtype": dtype} if dtype else {}
    config_kwargs = {"is_causal": False} if bidirectional else {}
    word = Transformer(model_path, model_kwargs=model_kwargs, config_kwargs=config_kwargs,
                       max_seq_length=max_length)
    if bidirectional:
        make_bidirectional(word.auto_model)
    tok = word.tokenizer
    if tok.pad_token is None:  # Llama/Mistral tokenizers ship without one
        tok.pad_token = tok.eos_token or tok.unk_token
        word.auto_model.config.pad_token_id = tok.pad_token_id
    tok.padding_side = "right"  # bi-directional + mean pooling: side does not matter; keep the mask simple
    pool = Pooling(word.get_embedding_dimension(), pooling_mode="mean", include_prompt=False)
    return SentenceTransformer(modules=[word, pool, Normalize()], device=device)


def add_lora(model: Any, settings: LoraSettings) -> None:
    """Inject a trainable LoRA adapter (peft) into the backbone; everything else is frozen.

    Uses ``peft.inject_adapter_in_model`` directly: transformers 5's own PEFT integration
    (``model.add_adapter``) needs peft >= 0.22, which this environment does not have.
    """
    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ImportError:
        raise HardnegError("LoRA needs the package 'peft': pip install peft") from None
    auto = model[0].auto_model
    names = {n.rsplit(".", 1)[-1] for n, _ in auto.named_modules()}
    targets = [t for t in settings.target_modules if t in names]
    if not targets:
        raise HardnegError(f"none of the LoRA target modules {list(settings.target_modules)} exist in the model; "
                           f"pass --lora-targets from its layer names (e.g. query,value for BERT)")
    cfg = LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout, target_modules=targets)
    inject_adapter_in_model(cfg, auto)
    for name, p in model.named_parameters():
        p.requires_grad_("lora_" in name)
    auto._hardneg_lora_config = cfg
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    log.info("LoRA r=%d alpha=%d on %s: %d / %d parameters trainable", settings.r, settings.alpha,
             targets, trainable, total)


def has_lora(model: Any) -> bool:
    from peft.tuners.tuners_utils import BaseTunerLayer

    return any(isinstance(m, BaseTunerLayer) for m in model[0].auto_model.modules())


def merge_lora(model: Any) -> None:
    """Fold every LoRA layer into its base weights and drop the adapter (in place).

    After this, ``model.save(DIR)`` writes plain weights: ``SentenceTransformer(DIR)`` needs no peft.
    """
    from peft.tuners.tuners_utils import BaseTunerLayer

    auto = model[0].auto_model
    for name, module in list(auto.named_modules()):
        if not isinstance(module, BaseTunerLayer):
            continue
        module.merge()
        parent_name, _, child = name.rpartition(".")
        parent = auto.get_submodule(parent_name) if parent_name else auto
        setattr(parent, child, module.get_base_layer())
    if hasattr(auto, "_hardneg_lora_config"):
        del auto._hardneg_lora_config
    for p in auto.parameters():
        p.requires_grad_(True)


def save_adapter_only(model: Any, out: str, base_path: str) -> None:
    """Replace the full weights ``model.save`` wrote in ``out`` by a standard peft adapter
    (``adapter_config.json`` + ``adapter_model.safetensors``, base = ``base_path``).

    ``SentenceTransformer(out)`` then loads base + adapter through transformers' PEFT integration
    (transformers 5 needs peft >= 0.22 for that); ``peft.PeftModel.from_pretrained`` loads it too.
    """
    from pathlib import Path

    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    auto = model[0].auto_model
    cfg = auto._hardneg_lora_config
    cfg.base_model_name_or_path = str(base_path)
    state = {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(auto).items()}
    outp = Path(out)
    for f in outp.glob("model*.safetensors*"):
        f.unlink()
    save_file(state, str(outp / "adapter_model.safetensors"))
    cfg.save_pretrained(str(outp))
