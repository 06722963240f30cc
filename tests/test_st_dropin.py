"""``hardneg.mine_hard_negatives`` against sentence-transformers' own ``mine_hard_negatives``.

Same data, same loaded MiniLM (and a tiny random cross-encoder), same arguments: where the peer's
semantics are not a bug the two datasets must be equal (texts exactly, scores to 1e-5); where they
are (the docstring's list of differences) the difference itself is asserted. Both sides cache their
embeddings in a module folder, so MiniLM encodes each text set once per side.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

datasets = pytest.importorskip("datasets")
pytest.importorskip("sentence_transformers")

from hardneg.compat.sentence_transformers import mine_hard_negatives as ours  # noqa: E402
from hardneg.compat.sentence_transformers import text_id  # noqa: E402
from hardneg.core.errors import HardnegError  # noqa: E402

TOPICS = ["cats", "dogs", "the moon", "coffee", "rivers", "volcanoes", "chess", "bread", "trains", "bees"]
FACTS = ["purr when they are content", "were domesticated from wolves", "orbits the earth every month",
         "is brewed from roasted beans", "flow downhill into the sea", "erupt molten rock called lava",
         "is played on a board of 64 squares", "is baked from flour and yeast", "run on steel rails",
         "make honey from nectar"]


def _pairs():
    """20 anchors (10 topics x 2 phrasings), one with a second positive and one repeated pair."""
    anchors, pos = [], []
    for t, f in zip(TOPICS, FACTS):
        anchors += [f"what do you know about {t}?", f"tell me one fact about {t}"]
        pos += [f"{t.capitalize()} {f}.", f"A well known fact: {t} {f}."]
    anchors += [anchors[0], anchors[4]]  # anchor 0 gets a second positive; pair 4 is repeated
    pos += [pos[2], pos[4]]
    return datasets.Dataset.from_dict({"query": anchors, "answer": pos})


CORPUS = ([f"{TOPICS[j % 10].capitalize()} are mentioned in story number {j}." for j in range(20)]
          + [f"Notes on {TOPICS[j % 10]} and {TOPICS[(3 * j + 1) % 10]}, part {j}." for j in range(20)]
          + [f"{TOPICS[j].capitalize()} {FACTS[(j + 1) % 10]}." for j in range(10)]  # wrong facts: hard
          + ["Cats purr when they are content."])  # also a positive's text: one id


@pytest.fixture(scope="module")
def model():
    from sentence_transformers import SentenceTransformer

    from hardneg.encode.models import resolve_model

    return SentenceTransformer(resolve_model("minilm"), device="cpu")


@pytest.fixture(scope="module")
def cross_encoder(tmp_path_factory, model):
    """A randomly initialised 2-layer BERT cross-encoder on MiniLM's tokenizer. Weights drawn with std 0.5
    (not BERT's 0.02, whose scores all sit within 1e-5 of 0.4963 and tie in float32), so candidates'
    scores lie ~1e-5 or more apart while batching changes them by ~1e-7: the ranking is well defined."""
    import torch
    from sentence_transformers import CrossEncoder
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(3)
    tok = model.tokenizer
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128, num_labels=1, initializer_range=0.5)
    out = tmp_path_factory.mktemp("tiny_ce")
    BertForSequenceClassification(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return CrossEncoder(str(out), device="cpu")


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    return str(tmp_path_factory.mktemp("peer_cache")), str(tmp_path_factory.mktemp("our_cache"))


@pytest.fixture(scope="module")
def run(model, caches):
    """``run(**kw)`` -> (peer's dataset, ours) for the same pairs, model and arguments."""
    from sentence_transformers.util import mine_hard_negatives as peer

    pairs = _pairs()

    def both(corpus=CORPUS, data=pairs, **kw):
        a = peer(data, model, corpus=corpus, verbose=False, cache_folder=caches[0], **kw)
        b = ours(data, model, corpus=corpus, verbose=False, cache_folder=caches[1], **kw)
        return a, b

    return both


SCORE_COLUMNS = {"scores", "score"}


def assert_same(a, b):
    """Same columns, same rows: texts and labels exactly, scores to 1e-5."""
    assert a.column_names == b.column_names
    assert len(a) == len(b)
    for col in a.column_names:
        if col in SCORE_COLUMNS:
            x, y = a[col], b[col]
            if x and isinstance(x[0], list):
                assert [len(r) for r in x] == [len(r) for r in y]
                x, y = [v for r in x for v in r], [v for r in y for v in r]
            np.testing.assert_allclose(np.array(x, float), np.array(y, float), atol=1e-5)
        else:
            assert a[col] == b[col], col


# --- agreement: every parameter and format where the peer is not buggy -------------------------------

@pytest.mark.parametrize("kw", [
    {},                                                                    # triplet, 3 top negatives
    {"output_scores": True},
    {"output_format": "n-tuple", "num_negatives": 4, "output_scores": True},
    {"output_format": "labeled-pair"},
    {"output_format": "labeled-pair", "output_scores": True},
    {"output_format": "labeled-list"},
    {"output_format": "labeled-list", "output_scores": True, "num_negatives": 2},
    {"range_min": 2, "range_max": 12, "output_format": "n-tuple"},
    {"relative_margin": 0.05, "output_format": "n-tuple", "num_negatives": 5},
    {"absolute_margin": 0.02, "max_score": 0.62, "min_score": 0.15, "output_scores": True},
    {"relative_margin": 0.1, "range_max": 30, "num_negatives": 4, "output_format": "labeled-list"},
    {"use_faiss": True, "batch_size": 8, "faiss_batch_size": 7, "output_format": "n-tuple"},
    {"as_triplets": False, "margin": 0.05, "num_negatives": 2},               # deprecated names
    {"output_format": "n-tuple-scores", "num_negatives": 2},                   # deprecated format
    {"include_positives": True, "num_negatives": 3},                           # ranking incl. positives
])
def test_same_rows_as_the_peer(run, kw):
    a, b = run(**kw)
    assert len(a) > 0
    assert_same(a, b)


def test_same_rows_with_named_columns_without_a_corpus_and_with_prompts(run, model):
    pairs = _pairs()
    named = pairs.add_column("id", list(range(len(pairs)))).select_columns(["id", "query", "answer"])
    assert_same(*run(data=named, anchor_column_name="query", positive_column_name="answer", num_negatives=2))
    assert_same(*run(corpus=None, num_negatives=2, output_format="n-tuple"))
    saved = dict(model.prompts)
    model.prompts.update({"question": "Represent this question: ", "doc": "Represent this text: "})
    try:  # a raw query prompt (it wins over the named one) and a named corpus prompt
        a, b = run(query_prompt="query: ", query_prompt_name="question", corpus_prompt_name="doc",
                   output_format="labeled-list", output_scores=True)
    finally:
        model.prompts.clear()
        model.prompts.update(saved)
    assert_same(a, b)
    plain, _ = run(output_format="labeled-list", output_scores=True)
    assert list(a["scores"]) != list(plain["scores"])  # the prompts reached the model


def test_same_rows_with_a_cross_encoder_that_rescores(run, cross_encoder):
    # the peer rescores when a score rule is set: then both rank and threshold on the cross-encoder
    a, b = run(cross_encoder=cross_encoder, min_score=-1e9, output_format="n-tuple", output_scores=True,
               num_negatives=3)
    assert_same(a, b)
    assert_same(*run(cross_encoder=cross_encoder, relative_margin=0.0, range_max=15, output_format="labeled-pair",
                     output_scores=True))


def test_the_ids_are_the_texts(model, caches):
    ds, info = ours(_pairs(), model, corpus=CORPUS, verbose=False, cache_folder=caches[1], return_stats=True)
    data = info.data
    assert len(data.corpus) == len(dict.fromkeys(CORPUS + list(_pairs()["answer"])))  # duplicates are one id
    for row in info.result.rows:
        assert row.qid == text_id(data.queries[row.qid])
        assert row.pos_id not in row.neg_ids
        assert all(d == text_id(data.corpus.texts[data.corpus.index[d]]) for d in row.neg_ids)
    # anchor 0 has two positives: both are removed from both of its rows
    a0 = text_id(_pairs()["query"][0])
    rows0 = [r for r in info.result.rows if r.qid == a0]
    assert len(rows0) == 2 and not {r.pos_id for r in rows0} & {d for r in rows0 for d in r.neg_ids}
    assert info.stats["pairs"] == 21 and info.stats["rows_out"] == len(ds) == 63


# --- the documented differences --------------------------------------------------------------------

def test_short_rows_are_counted_reported_and_kept_on_request(run, model, caches, caplog):
    kw = {"relative_margin": 0.15, "range_max": 8, "num_negatives": 4, "output_format": "n-tuple"}  # 7 of 21 short
    with caplog.at_level(logging.WARNING, "hardneg.compat.sentence_transformers"):
        a, b = run(**kw)
    assert_same(a, b)  # "drop" is the peer's output ...
    _, info = ours(_pairs(), model, corpus=CORPUS, verbose=False, cache_folder=caches[1], return_stats=True, **kw)
    st = info.stats
    assert st["rows_short"] == st["rows_dropped"] == 21 - len(a) == 7  # ... but every dropped row is named
    assert sorted(s["negatives"] for s in st["short"]) == [0, 0, 1, 2, 3, 3, 3]
    assert "have fewer than the requested negatives" in caplog.text
    pairs = _pairs()
    assert {(pairs["query"][s["row"]], pairs["answer"][s["row"]]) for s in st["short"]}.isdisjoint(
        set(zip(a["query"], a["answer"])))
    kept = ours(_pairs(), model, corpus=CORPUS, verbose=False, cache_folder=caches[1], on_shortfall="keep", **kw)
    assert len(kept) == 21
    full = [i for i in range(len(kept)) if kept["negative_4"][i] is not None]
    assert kept.select(full).to_dict() == a.to_dict()  # the filled rows are the peer's rows
    assert sorted(sum(kept[f"negative_{j}"][i] is not None for j in (1, 2, 3, 4)) for i in range(21)
                  if i not in full) == [0, 0, 1, 2, 3, 3, 3]  # kept short, None where nothing was found


def test_include_positives_keeps_the_positives_through_the_score_rules(run):
    a, b = run(include_positives=True, absolute_margin=0.01, num_negatives=3)
    negs = lambda ds, i: [ds[f"negative_{j}"][i] for j in (1, 2, 3)]  # noqa: E731
    # the peer's margin removes the positive it was asked to include (#4053); ours keeps it
    assert all(a["answer"][i] not in negs(a, i) for i in range(len(a)))
    assert all(b["answer"][i] in negs(b, i) for i in range(len(b)))


def test_a_cross_encoder_is_used_even_without_a_score_rule(run, cross_encoder):
    # sentence-transformers 6.3 rescores whenever a cross_encoder is given (6.2 ignored it without a rule)
    a, b = run(cross_encoder=cross_encoder, output_format="n-tuple", num_negatives=2, output_scores=True)
    assert_same(a, b)
    plain, _ = run(output_format="n-tuple", num_negatives=2, output_scores=True)
    assert list(plain["negative_1"]) != list(b["negative_1"])  # the cross-encoder re-ranked the candidates
    for i in range(len(b)):
        texts = [b["answer"][i], b["negative_1"][i], b["negative_2"][i]]
        want = cross_encoder.predict([(b["query"][i], t) for t in texts])
        np.testing.assert_allclose(b["scores"][i], want, atol=1e-5)  # the cross-encoder's scores


def test_the_anchor_text_in_the_corpus_is_never_its_negative(run):
    # 6.3: a corpus text equal to the anchor is excluded (unless it is one of the anchor's positives)
    pairs = _pairs()
    corpus = CORPUS + list(dict.fromkeys(pairs["query"]))
    a, b = run(corpus=corpus, output_format="n-tuple", num_negatives=5)
    assert_same(a, b)
    for i in range(len(b)):
        assert b["query"][i] not in [b[f"negative_{j}"][i] for j in range(1, 6)]
    # the other anchors' texts are fair candidates, and the nearest are taken
    assert any(b[f"negative_{j}"][i] in set(pairs["query"]) for i in range(len(b)) for j in range(1, 6))


def test_random_sampling_is_seeded_and_stays_in_the_window(run, model, caches):
    kw = {"range_min": 1, "range_max": 9, "num_negatives": 3, "output_format": "n-tuple", "output_scores": True}
    window, _ = run(range_min=1, range_max=9, num_negatives=8, output_format="n-tuple")
    a, b = run(sampling_strategy="random", **kw)
    assert len(a) == len(b)
    again = ours(_pairs(), model, corpus=CORPUS, verbose=False, cache_folder=caches[1], sampling_strategy="random",
                 **kw)
    other = ours(_pairs(), model, corpus=CORPUS, verbose=False, cache_folder=caches[1], sampling_strategy="random",
                 seed=7, **kw)
    assert again.to_dict() == b.to_dict() and other.to_dict() != b.to_dict()
    allowed = {(q, p): {window[f"negative_{j}"][i] for j in range(1, 9)}
               for i, (q, p) in enumerate(zip(window["query"], window["answer"]))}
    for ds in (a, b):
        for i in range(len(ds)):
            picked = [ds[f"negative_{j}"][i] for j in (1, 2, 3)]
            assert set(picked) <= allowed[(ds["query"][i], ds["answer"][i])]
            assert ds["scores"][i][1:] == sorted(ds["scores"][i][1:], reverse=True)


def test_bad_arguments_are_named(run, model, caches):
    pairs = _pairs()
    with pytest.raises(HardnegError, match="anchor_column_name='question' is not a column"):
        ours(pairs, model, anchor_column_name="question")
    a, _ = run(num_negatives=1)
    from sentence_transformers.util import mine_hard_negatives as peer

    fallback = peer(pairs, model, anchor_column_name="question", corpus=CORPUS, verbose=False, num_negatives=1,
                    cache_folder=caches[0])
    assert fallback.to_dict() == a.to_dict()  # the peer silently used the first column
    for kw, msg in [({"sampling_strategy": "best"}, "sampling_strategy"), ({"num_negatives": 0}, "num_negatives"),
                    ({"range_min": 5, "range_max": 7}, "cannot mine 3 negatives"), ({"output_format": "x"}, "x"),
                    ({"on_shortfall": "deepen"}, "on_shortfall"), ({"mine_options": {"depth": 5}}, "depth")]:
        with pytest.raises(HardnegError, match=msg):
            ours(pairs, model, corpus=CORPUS, verbose=False, **kw)
    with pytest.raises(HardnegError, match="empty"):
        ours(pairs.select([]), model)
    with pytest.raises(HardnegError, match="not a text"):
        ours(datasets.Dataset.from_dict({"q": ["a", None], "p": ["b", "c"]}), model)


# --- hardneg's extras and the cache ---------------------------------------------------------------

def test_hardneg_method_equals_the_peers_rule(model, caches):
    base = dict(corpus=CORPUS, verbose=False, cache_folder=caches[1], output_format="n-tuple", num_negatives=4)
    peer_rule = ours(_pairs(), model, relative_margin=0.05, **base)
    hardneg_rule = ours(_pairs(), model, method="percpos", mine_options={"perc": 0.95}, **base)  # range_max 42 too
    assert hardneg_rule.to_dict() == peer_rule.to_dict()


def test_extra_teacher_judge_and_stats(model, caches):
    from hardneg.mining.teachers.bm25 import BM25Teacher

    ds, info = ours(_pairs(), model, corpus=CORPUS, verbose=False, cache_folder=caches[1], num_negatives=4,
                    output_format="n-tuple", teachers=[BM25Teacher(cache=False)], selection="top",
                    mine_options={"ensemble": "intra-dedup", "judge": "agreement", "judge_min_votes": 2},
                    return_stats=True)
    teachers = {t for r in info.result.rows for t in r.neg_teachers}
    assert len(teachers) == 2 and "bm25" in teachers
    assert info.stats["judge"]["judge"] == "agreement" and len(ds) == 21 - info.stats["rows_dropped"]
    assert {"positive", "range_max"} <= set(info.stats["removed"])


def test_sharded_engine_gives_the_same_rows(model, caches):
    from hardneg.compat.sentence_transformers import default_engine
    from hardneg.scale.engine import EngineConfig

    assert not default_engine(102_400).sharded and default_engine(102_401).sharded
    kw = dict(corpus=CORPUS, verbose=False, cache_folder=caches[1], output_format="n-tuple", num_negatives=4,
              output_scores=True, relative_margin=0.05)
    assert_same(ours(_pairs(), model, **kw), ours(_pairs(), model, engine=EngineConfig(shard_rows=16), **kw))


def test_cache_serves_a_second_run_without_encoding(model, tmp_path, monkeypatch):
    class NoEncode:  # the same weights and settings, but encoding is forbidden: everything must come from the cache
        def __init__(self, m):
            self.m, self.prompts, self.max_seq_length = m, m.prompts, m.max_seq_length
            self.model_card_data, self.state_dict, self.get_embedding_dimension = (
                m.model_card_data, m.state_dict, m.get_embedding_dimension)

        def encode_query(self, *a, **k):
            raise AssertionError("encoded again")

        encode_document = encode_query

    monkeypatch.setenv("HARDNEG_CACHE", str(tmp_path / "default_cache"))
    first = ours(_pairs(), model, corpus=CORPUS, verbose=False, cache_folder=str(tmp_path / "c"), num_negatives=2)
    assert (tmp_path / "c" / "embeddings").is_dir() and (tmp_path / "c" / "pools").is_dir()
    again = ours(_pairs(), NoEncode(model), corpus=CORPUS, verbose=False, cache_folder=str(tmp_path / "c"),
                 num_negatives=2, relative_margin=0.05)
    assert len(again) > 0 and first.column_names == again.column_names
    assert not (tmp_path / "default_cache").exists()  # nothing outside cache_folder


def test_a_hardneg_encoder_is_accepted(tmp_path, monkeypatch):
    from fakes import RowEncoder

    monkeypatch.setenv("HARDNEG_CACHE", str(tmp_path / "default_cache"))
    pairs = datasets.Dataset.from_dict({"q": ["1", "2", "3"], "p": ["4", "5", "6"]})
    ds = ours(pairs, RowEncoder(), corpus=[str(i) for i in range(7, 30)], num_negatives=2, verbose=False)
    assert len(ds) == 6 and set(ds["q"]) == {"1", "2", "3"}
    assert not (tmp_path / "default_cache").exists()  # no cache_folder: a temporary folder only


# --- end to end: a sentence-transformers training script, one import line changed -----------------

SCRIPT = '''
from datasets import Dataset
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.losses import MultipleNegativesRankingLoss
from sentence_transformers.util import mine_hard_negatives

model = SentenceTransformer(MODEL, device="cpu")
pairs = Dataset.from_dict({"anchor": ANCHORS, "positive": POSITIVES})
train = mine_hard_negatives(pairs, model, corpus=CORPUS, num_negatives=2, range_max=10,
                            output_format="n-tuple", verbose=False)
args = SentenceTransformerTrainingArguments(output_dir=OUT, max_steps=2, per_device_train_batch_size=4,
                                            report_to="none", save_strategy="no", use_cpu=True)
trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train,
                                     loss=MultipleNegativesRankingLoss(model))
trainer.train()
RESULT = (train.column_names, trainer.state.global_step)
'''


def test_a_training_script_runs_after_changing_one_import(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("HARDNEG_CACHE", str(tmp_path / "cache"))
    ported = SCRIPT.replace("from sentence_transformers.util import mine_hard_negatives",
                            "from hardneg import mine_hard_negatives")
    diff = [(x, y) for x, y in zip(SCRIPT.splitlines(), ported.splitlines()) if x != y]
    assert len(diff) == 1 and len(SCRIPT.splitlines()) == len(ported.splitlines())
    pairs = _pairs()
    env = {"MODEL": str(tiny_model), "ANCHORS": list(pairs["query"]), "POSITIVES": list(pairs["answer"]), "CORPUS": CORPUS,
           "OUT": str(tmp_path / "run")}
    exec(compile(ported, "train_script.py", "exec"), env)  # noqa: S102 - our own test script
    columns, steps = env["RESULT"]
    assert columns == ["anchor", "positive", "negative_1", "negative_2"] and steps == 2
