"""Decoder LLMs as embedders: bi-directional attention, mean pooling, LoRA (tiny random models)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hardneg.training.decoder import (
    LoraSettings,
    add_lora,
    build_decoder_embedder,
    has_lora,
    is_decoder,
    merge_lora,
    save_adapter_only,
)

WORDS = ["what", "is", "a", "cat", "dog", "moon", "sun", "star", "the", "orbits", "earth", "instruct", ":"]


def build_tiny_decoder(path: Path, family: str = "llama", seed: int = 0) -> Path:
    """Save a randomly initialised 2-layer causal LM (hidden 32) + a word-level tokenizer with BOS."""
    import transformers
    from fakes import save_word_tokenizer

    torch.manual_seed(seed)
    n_vocab = save_word_tokenizer(path, WORDS, 64)
    cfg_cls, lm_cls = {"llama": ("LlamaConfig", "LlamaForCausalLM"), "qwen2": ("Qwen2Config", "Qwen2ForCausalLM"),
                       "mistral": ("MistralConfig", "MistralForCausalLM")}[family]
    cfg = getattr(transformers, cfg_cls)(vocab_size=n_vocab, hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                         max_position_embeddings=64, bos_token_id=1, eos_token_id=2)
    getattr(transformers, lm_cls)(cfg).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory) -> Path:
    return build_tiny_decoder(tmp_path_factory.mktemp("llama"))


def _first_token(model, text):
    feats = model.preprocess([text])
    with torch.no_grad():
        return model[0](dict(feats))["token_embeddings"][0, 1].clone()  # first token after <s>


@pytest.mark.parametrize("family", ["llama", "qwen2", "mistral"])
def test_bidirectional_attention_lets_first_token_see_later_tokens(tmp_path, family):
    path = build_tiny_decoder(tmp_path / family, family)
    assert is_decoder(str(path))
    bi = build_decoder_embedder(str(path))
    a, b = _first_token(bi, "what is a cat"), _first_token(bi, "what is a dog")
    assert (a - b).abs().max() > 1e-4  # changing token 4 changes token 1's output
    causal = build_decoder_embedder(str(path), bidirectional=False)
    a, b = _first_token(causal, "what is a cat"), _first_token(causal, "what is a dog")
    assert torch.allclose(a, b, atol=1e-6)  # control: under the causal mask it cannot


def test_saved_decoder_reloads_bidirectional_with_mean_pooling(tiny_llama, tmp_path):
    from sentence_transformers import SentenceTransformer

    model = build_decoder_embedder(str(tiny_llama))
    model.save(str(tmp_path / "m"))
    loaded = SentenceTransformer(str(tmp_path / "m"))
    assert loaded[1].pooling_mode == "mean"
    a, b = _first_token(loaded, "what is a cat"), _first_token(loaded, "what is a dog")
    assert (a - b).abs().max() > 1e-4
    np.testing.assert_allclose(loaded.encode(["the moon orbits the earth"]),
                               model.encode(["the moon orbits the earth"]), atol=1e-5)


def test_padding_does_not_change_embeddings(tiny_llama):
    model = build_decoder_embedder(str(tiny_llama))
    alone = model.encode(["what is a cat"])
    batched = model.encode(["what is a cat", "the moon orbits the earth and the sun is a star"])
    np.testing.assert_allclose(alone[0], batched[0], atol=1e-5)


def _perturb_lora(model):
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)


def test_lora_trains_only_adapters_and_merges_to_same_embeddings(tiny_llama, tmp_path):
    from sentence_transformers import SentenceTransformer

    model = build_decoder_embedder(str(tiny_llama))
    base = model.encode(["what is a cat"])
    add_lora(model, LoraSettings(r=4, alpha=8, target_modules=("q_proj", "v_proj")))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert len(trainable) == 2 * 2 * 2  # layers x modules x (A, B)
    _perturb_lora(model)
    model.eval()
    adapted = model.encode(["what is a cat"])
    assert not np.allclose(adapted, base, atol=1e-4)
    model.save(str(tmp_path / "adapter"))
    save_adapter_only(model, str(tmp_path / "adapter"), str(tiny_llama))
    assert not (tmp_path / "adapter" / "model.safetensors").exists()
    # the adapter alone, put on a fresh base, reproduces the adapted embeddings
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    fresh = build_decoder_embedder(str(tiny_llama))
    add_lora(fresh, LoraSettings(r=4, alpha=8, target_modules=("q_proj", "v_proj")))
    set_peft_model_state_dict(fresh[0].auto_model, load_file(str(tmp_path / "adapter" / "adapter_model.safetensors")))
    fresh.eval()
    np.testing.assert_allclose(fresh.encode(["what is a cat"]), adapted, atol=1e-5)
    assert has_lora(model)
    merge_lora(model)
    assert not has_lora(model)
    assert not any("lora_" in n for n, _ in model.named_parameters())
    np.testing.assert_allclose(model.encode(["what is a cat"]), adapted, atol=1e-5)
    model.save(str(tmp_path / "merged"))
    assert not (tmp_path / "merged" / "adapter_config.json").exists()
    np.testing.assert_allclose(SentenceTransformer(str(tmp_path / "merged")).encode(["what is a cat"]),
                               adapted, atol=1e-5)


def test_lora_settings_validation(tiny_llama):
    from hardneg.core.errors import HardnegError

    with pytest.raises(HardnegError):
        LoraSettings(r=0)
    model = build_decoder_embedder(str(tiny_llama))
    with pytest.raises(HardnegError, match="target modules"):
        add_lora(model, LoraSettings(target_modules=("no_such_module",)))
