"""The llm false-negative judge: P(yes) from a causal LM's next-token logits, flags, dedup, mine() wiring."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hardneg.core.errors import HardnegError
from hardneg.mining.config import DEFAULT_LLM_PROMPT, MineConfig
from hardneg.mining.mine import mine
from test_mine_judge import cfg, data, pools

WORDS = ["Query", "Passage", "Is", "the", "passage", "relevant", "to", "query", "Answer", "yes", "or", "no",
         ":", "?", ".", "text", "one", "two", "what", "is", "a", "cat", "dog", "moon", "sun", "star", "orbits",
         "earth", *map(str, range(8))]


def build_tiny_lm(path: Path, family: str = "llama", seed: int = 0) -> Path:
    """Save a randomly initialised 2-layer causal LM (hidden 32) + a word-level tokenizer with BOS."""
    import torch
    import transformers
    from fakes import save_word_tokenizer

    torch.manual_seed(seed)
    n_vocab = save_word_tokenizer(path, WORDS, 128)
    if family == "gpt2":  # learned absolute positions: left padding only works with the right position ids
        cfg_ = transformers.GPT2Config(vocab_size=n_vocab, n_embd=32, n_layer=2, n_head=2, n_positions=128,
                                       bos_token_id=1, eos_token_id=2)
        transformers.GPT2LMHeadModel(cfg_).save_pretrained(path)
    else:
        cfg_ = transformers.LlamaConfig(vocab_size=n_vocab, hidden_size=32, intermediate_size=64,
                                        num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                        max_position_embeddings=128, bos_token_id=1, eos_token_id=2)
        transformers.LlamaForCausalLM(cfg_).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory) -> Path:
    return build_tiny_lm(tmp_path_factory.mktemp("lm"))


# P(yes) by passage text (the same for every query); d0 / d4 are q1's / q2's known positives
TABLE = {"text 0": 0.9, "text 3": 0.8, "text 1": 0.2, "text 2": 0.55, "text 5": 0.1, "text 4": 0.6, "text 6": 0.45}


class FakeScorer:
    def __init__(self):
        self.calls: list[list[tuple[str, str]]] = []

    def __call__(self, pairs):
        self.calls.append(list(pairs))
        return [TABLE.get(p, 0.0) for _, p in pairs]


def llm_cfg(**kw):
    return cfg(**{"judge": "llm", **kw})


def test_threshold_flags_and_each_pair_is_scored_once():
    from hardneg.mining.teachers.judge import LlmJudge

    fake = FakeScorer()
    res = mine(data(), pools(), llm_cfg(), judge=LlmJudge(score_fn=fake, threshold=0.5))
    # both pools hold the same 4 passages per query: 8 distinct candidate pairs + 2 positives, one call
    assert len(fake.calls) == 1 and len(fake.calls[0]) == len(set(fake.calls[0])) == 10
    assert ("one", "text 0") in fake.calls[0] and ("two", "text 4") in fake.calls[0]
    # q1: d3 (0.8), d2 (0.55) reach 0.5; q2: d2 (0.55); d6 (0.45) does not
    assert {(e["qid"], e["doc_id"]) for e in res.audit} == {("q1", "d3"), ("q1", "d2"), ("q2", "d2")}
    assert len(res.audit) == 6  # each flagged passage in both teachers' pools
    rows = {r.qid: r for r in res.rows}
    assert not {"d3", "d2"} & set(rows["q1"].neg_ids) and "d2" not in rows["q2"].neg_ids
    e = next(e for e in res.audit if e["doc_id"] == "d3")
    assert e["judge"] == "llm" and e["judge_scores"] == {"p_yes": 0.8, "p_yes_positive": 0.9}
    assert res.stats["judge"]["held_out"]["precision"] == pytest.approx(1 / 3)  # of 3 flagged pairs, d3 is a hidden positive
    strict = mine(data(), pools(), llm_cfg(), judge=LlmJudge(score_fn=FakeScorer(), threshold=0.8))
    assert {(e["qid"], e["doc_id"]) for e in strict.audit} == {("q1", "d3")}  # >= is inclusive


def test_relative_rule_and_relabel_action():
    from hardneg.mining.teachers.judge import LlmJudge

    judge = LlmJudge(score_fn=FakeScorer(), relative=True, margin=0.2)
    res = mine(data(), pools(), llm_cfg(false_negatives="relabel"), judge=judge)
    # q1: positive 0.9 -> flag >= 0.7: d3; q2: positive 0.6 -> flag >= 0.4: d2, d6
    assert {(e["qid"], e["doc_id"]) for e in res.audit} == {("q1", "d3"), ("q2", "d2"), ("q2", "d6")}
    rows = {r.qid: r for r in res.rows}
    assert rows["q1"].relabeled == ["d3"] and rows["q2"].relabeled == ["d2", "d6"]  # best teacher score first
    assert {e["decision"] for e in res.audit} == {"relabeled"}
    assert not {"d2", "d6"} & set(rows["q2"].neg_ids)


def test_tiny_lm_p_yes_is_a_probability_and_batching_never_changes_it(tiny_lm, tmp_path):
    import torch

    from hardneg.mining.teachers.judge import LlmJudge, answer_tokens

    pairs = [("what is a cat", "a cat is a star"), ("moon", "the moon orbits the earth and the sun is a star"),
             ("dog", "dog"), ("what is the sun", "the sun is a star what is the moon"), ("earth", "one two")]
    for path in (tiny_lm, build_tiny_lm(tmp_path / "gpt2", "gpt2")):
        one = LlmJudge(path, batch_size=1, device="cpu").p_yes(pairs)  # fp32: exact up to rounding
        four = LlmJudge(path, batch_size=4, device="cpu").p_yes(pairs)
        assert ((one > 0) & (one < 1)).all() and len(set(np.round(one, 6))) > 1
        np.testing.assert_allclose(four, one, atol=1e-5)
    judge = LlmJudge(tiny_lm, device="cpu")
    yes, no = answer_tokens(judge.tokenizer, judge.prompt)
    assert judge.tokenizer.convert_ids_to_tokens([yes, no]) == ["yes", "no"]
    # by hand: one unpadded prompt, softmax over the two next-token logits
    x = judge.tokenizer(judge.render(*pairs[1]), return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = judge.model(input_ids=x).logits[0, -1]
    assert judge.p_yes(pairs[1:2])[0] == pytest.approx(torch.softmax(logits[[yes, no]], -1)[0].item(), abs=1e-6)


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a GPU (bf16 path)")
def test_gpu_bf16_path_agrees_with_cpu(tiny_lm):
    from hardneg.mining.teachers.judge import LlmJudge

    pairs = [("what is a cat", "a cat is a star"), ("moon", "the moon orbits the earth and the sun is a star")]
    gpu = LlmJudge(tiny_lm, batch_size=2)
    assert next(gpu.model.parameters()).is_cuda
    np.testing.assert_allclose(gpu.p_yes(pairs), LlmJudge(tiny_lm, device="cpu").p_yes(pairs), atol=2e-2)


def test_prompt_rendering_cuts_the_passage_to_max_length_tokens(tiny_lm):
    from hardneg.mining.teachers.judge import LlmJudge

    judge = LlmJudge(tiny_lm, max_length=3)
    assert judge.render("what is a cat", "the moon orbits the earth") == (
        "Query: what is a cat\nPassage: the moon orbits\nIs the passage relevant to the query? Answer yes or no."
        "\nAnswer:")
    assert judge.cut("a cat") == "a cat"
    custom = LlmJudge(tiny_lm, prompt="{passage} ? {query} : {{ Answer:")
    assert custom.render("dog", "a star") == "a star ? dog : { Answer:"


def test_load_judge_runs_the_tiny_lm_through_mine(tiny_lm):
    from hardneg.mining.teachers.judge import LlmJudge, load_judge

    config = llm_cfg(judge_model=str(tiny_lm), judge_llm_threshold=0.0, judge_batch_size=3, false_negatives="keep")
    judge = load_judge(config, 2)
    assert isinstance(judge, LlmJudge) and judge.batch_size == 3 and judge.threshold == 0.0
    res = mine(data(), pools(), config, judge=judge)
    assert len(res.audit) == 16  # threshold 0: every eligible cell of both pools (2 x 2 queries x 4)
    assert all(0.0 <= e["judge_scores"]["p_yes"] <= 1.0 for e in res.audit)
    same = {}
    for e in res.audit:  # one score per (query, passage), whichever pool it came from
        assert same.setdefault((e["qid"], e["doc_id"]), e["judge_scores"]["p_yes"]) == e["judge_scores"]["p_yes"]


def test_cli_mine_with_the_llm_judge(tiny_beir, tiny_lm, tmp_path, capsys):
    from hardneg.cli.main import main
    from hardneg.core.provenance import read_meta
    from hardneg.data.negatives import audit_path, read_audit

    out = tmp_path / "neg.jsonl"
    rc = main(["mine", "--teacher", "bm25", "--data", str(tiny_beir), "--output", str(out), "--method", "naive",
               "--num-negatives", "2", "--judge", "llm", "--judge-model", str(tiny_lm), "--judge-llm-threshold", "0",
               "--judge-prompt", "Query: {query}\\nPassage: {passage}\\nAnswer:", "--cache-dir", str(tmp_path / "c")])
    assert rc == 0 and "judge llm:" in capsys.readouterr().out
    assert read_audit(out) and all(e["judge"] == "llm" for e in read_audit(out)) and audit_path(out).is_file()
    assert read_meta(out)["config"]["judge_prompt"] == "Query: {query}\nPassage: {passage}\nAnswer:"


def test_bad_settings_fail_clearly(tmp_path):
    from hardneg.mining.teachers.judge import LlmJudge, load_judge

    with pytest.raises(HardnegError, match=r"needs the placeholder \{passage\}"):
        MineConfig(judge="llm", judge_prompt="Query: {query}\nAnswer:")
    with pytest.raises(HardnegError, match=r"may only use \{query\} and \{passage\}"):
        MineConfig(judge="llm", judge_prompt="{query} {passage} {title}")
    with pytest.raises(HardnegError, match=r"judge_llm_threshold must be in \[0, 1\]"):
        MineConfig(judge="llm", judge_llm_threshold=1.5)
    with pytest.raises(HardnegError, match=r"threshold must be in \[0, 1\]"):
        LlmJudge(score_fn=FakeScorer(), threshold=-0.1)
    with pytest.raises(HardnegError, match=r"needs the placeholder \{query\}"):
        LlmJudge(score_fn=FakeScorer(), prompt="{passage}")
    with pytest.raises(HardnegError, match="needs --judge-model"):
        load_judge(llm_cfg(), 2)
    with pytest.raises(HardnegError, match="could not load model .*no-such-model"):
        load_judge(llm_cfg(judge_model=str(tmp_path / "no-such-model")), 2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(HardnegError, match="could not load the llm judge's tokenizer from .*empty"):
        load_judge(llm_cfg(judge_model=str(tmp_path / "empty")), 2)
    with pytest.raises(HardnegError, match="needs a model"):
        mine(data(), pools(), llm_cfg())
    assert MineConfig().judge_prompt == DEFAULT_LLM_PROMPT and MineConfig().judge_llm_threshold == 0.5


class ChunkTokenizer:
    """A stand-in tokenizer that cuts text into ``size``-character pieces (answer words become several tokens)."""

    unk_token_id = None

    def __init__(self, size):
        self.size, self.vocab = size, {}

    def __call__(self, text, add_special_tokens=False):
        pieces = [text[i:i + self.size] for i in range(0, len(text), self.size)]
        return {"input_ids": [self.vocab.setdefault(p, len(self.vocab)) for p in pieces]}


def test_multi_token_answers_use_their_first_token():
    from hardneg.mining.teachers.judge import answer_tokens

    tok = ChunkTokenizer(2)
    yes, no = answer_tokens(tok, "{query} {passage} Answer:")  # " yes" -> " y" + "es", " no" -> " n" + "o"
    assert (yes, no) == (tok.vocab[" y"], tok.vocab[" n"])
    with pytest.raises(HardnegError, match="cannot tell the answers"):
        answer_tokens(ChunkTokenizer(1), "{query} {passage} Answer:")  # both start with " "
