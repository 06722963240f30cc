"""Test fakes used by more than one test file: a teacher that reads a score table and an encoder that
reads a matrix. Both satisfy the library's protocols (``Teacher``, ``Encoder``) without a model.

Fixtures (tiny BEIR folder, tiny model) stay in ``conftest.py``; fakes used by one file stay there.
"""

from __future__ import annotations

import numpy as np

from hardneg.mining.candidates import Candidates
from hardneg.search.rank import id_order, rank


class TableTeacher:
    """Scores from a fixed (Q, N) table, one row per qid in ``qids``; ranks with ``search.rank``
    (score desc, then corpus id) and records each requested depth in ``depths``."""

    def __init__(self, qids, table, name: str = "fake"):
        self.name, self.fingerprint = name, name + "-fp"
        self.table = {q: np.asarray(r, np.float32) for q, r in zip(qids, table)}
        self.depths: list[int] = []

    def candidates(self, data, qids, depth):
        self.depths.append(depth)
        s = np.stack([self.table[q] for q in qids])  # (len(qids), N)
        idx = rank(s, id_order(data.corpus.ids), depth)
        pos = {q: {d: float(self.table[q][data.corpus.index[d]]) for d in data.relevant(q)} for q in qids}
        return Candidates(self.name, self.fingerprint, list(qids), idx, np.take_along_axis(s, idx, 1), pos)


class RowEncoder:
    """Text ``"i"`` -> row i of ``table`` (default: a fixed pseudo-random (1000, 8) table from ``seed``).

    Records each batch of texts it encodes in ``calls``; with ``fail_after``, raises
    ``KeyboardInterrupt`` (a kill mid-encode) once that many batches are done.
    """

    name = "rows"

    def __init__(self, table=None, seed: int = 0, fail_after: int | None = None, fingerprint: str | None = None):
        if table is None:
            table = np.random.default_rng(seed).normal(size=(1000, 8)).astype(np.float32)
        self.table, self.fingerprint = np.asarray(table), fingerprint or f"rows:{seed}"
        self.calls: list[list[str]] = []
        self.fail_after = fail_after

    def encode_passages(self, texts):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt("killed")
        self.calls.append(list(texts))
        return self.table[[int(t) for t in texts]]

    encode_queries = encode_passages


def save_word_tokenizer(path, words, model_max_length: int):
    """A word-level fast tokenizer (``<unk> <s> </s>`` + ``words``, BOS prepended) saved to ``path``;
    returns its vocabulary size. The tiny decoder LLMs of the tests share it."""
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers import models as tmodels
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(["<unk>", "<s>", "</s>"] + list(words))}
    tok = Tokenizer(tmodels.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                            model_max_length=model_max_length).save_pretrained(path)
    return len(vocab)
