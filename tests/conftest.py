"""Shared fixtures: a tiny BEIR folder and a tiny randomly initialised sentence-transformers model.

Everything here is offline and takes well under a second (the model is built, not downloaded).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

TINY_CORPUS = [
    {"_id": "d1", "title": "Cats", "text": "Cats are small domesticated carnivorous mammals."},
    {"_id": "d2", "title": "Dogs", "text": "Dogs are loyal domesticated descendants of wolves."},
    {"_id": "d3", "title": "", "text": "The sun is a star at the centre of the solar system."},
    {"_id": "d4", "title": "Kittens", "text": "A kitten is a juvenile cat."},
    {"_id": "d5", "title": "Moon", "text": "The moon orbits the earth."},
    {"_id": "d6", "title": "Wolves", "text": "Wolves live and hunt in packs."},
]
TINY_QUERIES = [
    {"_id": "q1", "text": "what is a cat"},
    {"_id": "q2", "text": "where do dogs come from"},
    {"_id": "q3", "text": "what orbits the earth"},
]
TINY_QRELS = {
    "train": [("q1", "d1", 1), ("q1", "d4", 1), ("q2", "d2", 1), ("q3", "d5", 1)],
    "test": [("q1", "d1", 2), ("q1", "d4", 1), ("q1", "d3", 0), ("q2", "d2", 1), ("q3", "d5", 1)],
}


def write_beir(root: Path, corpus=TINY_CORPUS, queries=TINY_QUERIES, qrels=TINY_QRELS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus))
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (root / "qrels").mkdir(exist_ok=True)
    for split, rows in qrels.items():
        lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{s}" for q, d, s in rows]
        (root / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def tiny_beir(tmp_path: Path) -> Path:
    """A 6-document BEIR folder with train and test splits (graded test qrels, one grade 0)."""
    return write_beir(tmp_path / "tiny")


def build_tiny_bert(path: Path, seed: int = 0) -> Path:
    """Save a randomly initialised 2-layer BERT as a sentence-transformers model (mean pooling)."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers import models as tmodels
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    torch.manual_seed(seed)
    words = sorted({w.strip(".,?").lower() for d in TINY_CORPUS + TINY_QUERIES
                    for w in (d.get("title", "") + " " + d["text"]).split()} - {""})
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words)}
    tok = Tokenizer(tmodels.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    from tokenizers.processors import TemplateProcessing

    tok.post_processor = TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
                                            special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]",
                                     cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                     model_max_length=64)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64)
    raw = path / "raw"
    BertModel(cfg).save_pretrained(raw)
    hf_tok.save_pretrained(raw)
    word = models.Transformer(str(raw), max_seq_length=64)
    pool = models.Pooling(word.get_embedding_dimension(), pooling_mode="mean")
    model = SentenceTransformer(modules=[word, pool, models.Normalize()])
    out = path / "st"
    model.save(str(out))
    return out


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """Path of a tiny random sentence-transformers model (2 layers, 32-d), built once per session."""
    return build_tiny_bert(tmp_path_factory.mktemp("tiny_model"))
