"""Model-based false-negative judges (they need texts and a model, so they live with the teachers).

Both score every distinct (query, passage) pair once: each still-eligible candidate of every pool
(a pair shared by several teachers' pools is scored once) and each known positive of its query.

``CrossEncoderJudge``: a sentence-transformers ``CrossEncoder`` scores the pairs in one batched
``predict`` call; a candidate is flagged when its score reaches the query's lowest positive score minus
``margin`` (``judges.margin_flags``).

``LlmJudge``: a causal LM reads a yes/no prompt per pair (``MineConfig.judge_prompt``) and its score is
P(yes) = softmax over its next-token logits of the answer tokens " yes" and " no" (``answer_tokens``); a
candidate is flagged when P(yes) >= ``threshold`` or, ``relative``, when P(yes) >= the query's lowest
P(yes | positive) - ``margin``.

``load_judge(config, teachers)`` builds the judge a ``MineConfig`` names.
"""

from __future__ import annotations

import logging
from pathlib import Path
from string import Formatter
from typing import Callable, Sequence

import numpy as np

from hardneg.core.errors import HardnegError
from hardneg.mining.config import DEFAULT_LLM_PROMPT, check_judge_prompt
from hardneg.mining.judges import Judge, JudgeContext, JudgeOut, Pool, margin_flags
from hardneg.mining.teachers.rescored import load_cross_encoder

log = logging.getLogger(__name__)

Pairs = dict[tuple[int, int], int]  # (query row, corpus row) -> position in the batch


def judged_pairs(pools: Sequence[Pool], context: JudgeContext) -> Pairs:
    """Every distinct (query row, corpus row) to score, first seen first: the eligible cells of the pools
    in order, then each query's known positives."""
    index = context.data.corpus.index
    pairs: Pairs = {}
    for (idx, _), alive in zip(pools, context.alive):
        for r, j in zip(*np.nonzero(alive)):
            pairs.setdefault((int(r), int(idx[r, j])), len(pairs))
    for r, q in enumerate(context.qids):
        for d in context.known[q]:
            pairs.setdefault((r, index[d]), len(pairs))
    return pairs


def spread(pools: Sequence[Pool], context: JudgeContext, pairs: Pairs, scores: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """The pair scores laid back onto each pool's (Q, D) cells (NaN where not eligible), and per query (Q,)
    the lowest score of its known positives (NaN when it has none)."""
    index = context.data.corpus.index
    cells = []
    for (idx, _), alive in zip(pools, context.alive):
        s = np.full(idx.shape, np.nan)
        for r, j in zip(*np.nonzero(alive)):
            s[r, j] = scores[pairs[(int(r), int(idx[r, j]))]]
        cells.append(s)
    pos = np.array([min((scores[pairs[(r, index[d])]] for d in context.known[q]), default=np.nan)
                    for r, q in enumerate(context.qids)])
    return cells, pos


def _pair_texts(context: JudgeContext, pairs: Pairs) -> list[tuple[str, str]]:
    corpus = context.data.corpus
    return [(context.data.queries[context.qids[r]], corpus.passage_texts_at(d)) for r, d in pairs]


class CrossEncoderJudge:
    name = "cross-encoder"

    def __init__(self, cross_encoder, *, margin: float = 0.0, batch_size: int = 32):
        self._ce = cross_encoder if not isinstance(cross_encoder, (str, Path)) else None
        self._spec = None if self._ce is not None else str(cross_encoder)
        self.margin, self.batch_size = float(margin), int(batch_size)

    @property
    def model(self):
        if self._ce is None:
            self._ce = load_cross_encoder(self._spec)
        return self._ce

    def judge(self, pools: Sequence[Pool], p: Sequence[np.ndarray], context: JudgeContext | None = None) -> list[JudgeOut]:
        if context is None:
            raise HardnegError("the cross-encoder judge needs the texts: run it through mine(..., judge=...)")
        pairs = judged_pairs(pools, context)
        batch = _pair_texts(context, pairs)
        scores = np.asarray(self.model.predict(batch, batch_size=self.batch_size, convert_to_numpy=True,
                                               show_progress_bar=len(batch) > 5000), dtype=np.float64)
        scores = scores.reshape(len(batch), -1)[:, 0] if len(batch) else scores
        cells, pos = spread(pools, context, pairs, scores)
        return [JudgeOut(margin_flags(ce, pos, self.margin) & alive,
                         {"cross_encoder": ce, "cross_encoder_positive": np.repeat(pos[:, None], ce.shape[1], 1)})
                for ce, alive in zip(cells, context.alive)]


ANSWERS = (" yes", " no")  # the answer words whose next-token logits are compared, as written after the prompt


def answer_tokens(tokenizer, prompt: str = DEFAULT_LLM_PROMPT, answers: tuple[str, str] = ANSWERS) -> tuple[int, int]:
    """The token ids of " yes" and " no" as the tokenizer writes them right after the prompt's last line.

    Each word is tokenized after the prompt's closing text (e.g. "Answer:"), so a SentencePiece
    tokenizer gives its "▁yes" and a byte-level BPE its "Ġyes"; a word that splits into several tokens is
    represented by its first one. The two ids must differ and must not be the unknown token.
    """
    last = list(Formatter().parse(prompt))[-1] if prompt else ("", None, None, None)
    tail = (last[0] if last[1] is None else "") or "Answer:"  # the text after the last placeholder
    ctx = tokenizer(tail, add_special_tokens=False)["input_ids"]
    ids = []
    for word in answers:
        full = tokenizer(tail + word, add_special_tokens=False)["input_ids"]
        rest = full[len(ctx):] if full[:len(ctx)] == ctx else tokenizer(word, add_special_tokens=False)["input_ids"]
        if not rest:
            raise HardnegError(f"the llm judge's tokenizer has no token for the answer {word!r}")
        ids.append(int(rest[0]))
    unk = getattr(tokenizer, "unk_token_id", None)
    if ids[0] == ids[1] or (unk is not None and unk in ids):
        raise HardnegError(f"the llm judge's tokenizer cannot tell the answers {answers} apart (first tokens {ids})")
    return ids[0], ids[1]


class LlmJudge:
    """A causal LM as a false-negative judge: P(yes) per (query, passage) from a yes/no prompt.

    ``model``: a model folder (loaded on first use with ``AutoModelForCausalLM`` / ``AutoTokenizer``,
    on cuda in bf16 when there is a GPU, else cpu in fp32) or a loaded causal LM with its ``tokenizer``.
    ``score_fn``: instead of a model, any ``[(query, passage)] -> P(yes) each`` (tests, an API). The
    passage is cut to ``max_length`` tokens; prompts go through the model ``batch_size`` at a time,
    longest first, left-padded with matching position ids, so the batch size does not change a score
    (beyond floating-point rounding, which is coarser in bf16 than in fp32).
    """

    name = "llm"

    def __init__(self, model=None, *, tokenizer=None, score_fn: Callable[[list[tuple[str, str]]], Sequence[float]] | None = None,
                 prompt: str = DEFAULT_LLM_PROMPT, threshold: float = 0.5, relative: bool = False, margin: float = 0.0,
                 batch_size: int = 16, max_length: int = 512, device: str | None = None):
        if model is None and score_fn is None:
            raise HardnegError("the llm judge needs a model (a causal LM folder or hub id) or a score_fn")
        if model is not None and not isinstance(model, (str, Path)) and tokenizer is None:
            raise HardnegError("a loaded llm judge model needs its tokenizer (tokenizer=...)")
        if not 0.0 <= threshold <= 1.0:
            raise HardnegError(f"the llm judge's threshold must be in [0, 1] (a probability), got {threshold}")
        if batch_size < 1 or max_length < 1:
            raise HardnegError(f"the llm judge's batch_size and max_length must be >= 1, got {batch_size}, {max_length}")
        self.prompt = check_judge_prompt(prompt)
        self._spec = str(model) if isinstance(model, (str, Path)) else None
        self._model, self._tok, self._score_fn = (None if self._spec else model), tokenizer, score_fn
        self.threshold, self.relative, self.margin = float(threshold), bool(relative), float(margin)
        self.batch_size, self.max_length, self._device = int(batch_size), int(max_length), device

    @property
    def tokenizer(self):
        if self._tok is None:
            from transformers import AutoTokenizer

            try:
                self._tok = AutoTokenizer.from_pretrained(self._spec)
            except Exception as e:  # noqa: BLE001 - any loading failure is the user's model folder
                raise HardnegError(f"could not load the llm judge's tokenizer from {self._spec!r}: "
                                   f"{type(e).__name__}: {e}") from None
        return self._tok

    @property
    def model(self):
        if self._model is None:
            import torch
            import transformers
            from packaging.version import Version

            device = self._device or ("cuda" if torch.cuda.is_available() else "cpu")
            dtype = torch.float32
            if device.startswith("cuda"):
                dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            kw = {"dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype": dtype}
            try:
                model = transformers.AutoModelForCausalLM.from_pretrained(self._spec, **kw)
            except Exception as e:  # noqa: BLE001
                raise HardnegError(f"could not load the llm judge {self._spec!r} as a causal LM: "
                                   f"{type(e).__name__}: {e}") from None
            self._model = model.to(device).eval()
            log.info("llm judge %s on %s (%s)", self._spec, device, dtype)
        return self._model

    def judge(self, pools: Sequence[Pool], p: Sequence[np.ndarray], context: JudgeContext | None = None) -> list[JudgeOut]:
        if context is None:
            raise HardnegError("the llm judge needs the texts: run it through mine(..., judge=...)")
        pairs = judged_pairs(pools, context)
        p_yes = self.p_yes(_pair_texts(context, pairs))
        cells, pos = spread(pools, context, pairs, p_yes)
        outs = []
        for py, alive in zip(cells, context.alive):
            with np.errstate(invalid="ignore"):
                flags = margin_flags(py, pos, self.margin) if self.relative else py >= self.threshold
            outs.append(JudgeOut(flags & alive, {"p_yes": py, "p_yes_positive": np.repeat(pos[:, None], py.shape[1], 1)}))
        return outs

    def p_yes(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        """(len(pairs),) float64 P(yes) of each (query, passage)."""
        if self._score_fn is not None:
            out = np.asarray(self._score_fn(list(pairs)), dtype=np.float64).reshape(-1)
            if out.shape != (len(pairs),):
                raise HardnegError(f"the llm judge's score_fn gave {out.shape[0]} scores for {len(pairs)} pairs")
            return out
        if not pairs:
            return np.zeros(0)
        import torch
        from tqdm.auto import tqdm

        model, tok = self.model, self.tokenizer
        yes, no = answer_tokens(tok, self.prompt)
        ids = [tok(self.render(q, d), add_special_tokens=True)["input_ids"] for q, d in pairs]
        order = sorted(range(len(ids)), key=lambda i: (-len(ids[i]), i))  # longest first: least padding
        pad = next((t for t in (tok.pad_token_id, tok.eos_token_id) if t is not None), 0)
        params = _forward_params(model)
        device = next(model.parameters()).device
        out = np.empty(len(ids))
        log.info("llm judge: %d prompts, %d per batch", len(ids), self.batch_size)
        starts = range(0, len(order), self.batch_size)
        with torch.no_grad():
            for s in tqdm(starts, desc="llm judge", unit="batch", disable=len(pairs) <= 5000):
                rows = order[s:s + self.batch_size]
                width = len(ids[rows[0]])
                x = torch.tensor([[pad] * (width - len(ids[i])) + ids[i] for i in rows], device=device)
                mask = torch.tensor([[0] * (width - len(ids[i])) + [1] * len(ids[i]) for i in rows], device=device)
                kw = {"attention_mask": mask, "use_cache": False}
                if "position_ids" in params:  # left padding: each prompt still starts at position 0
                    kw["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0)
                if "logits_to_keep" in params:  # only the last position's (B, V), not (B, L, V)
                    kw["logits_to_keep"] = 1
                logits = model(input_ids=x, **kw).logits[:, -1, :]  # (B, V): the next token after "Answer:"
                two = logits[:, [yes, no]].float().softmax(-1)  # (B, 2)
                out[rows] = two[:, 0].cpu().numpy()
        return out

    def render(self, query: str, passage: str) -> str:
        """The prompt for one pair, the passage cut to ``max_length`` tokens (at a token boundary)."""
        return self.prompt.format(query=query, passage=self.cut(passage))

    def cut(self, passage: str) -> str:
        tok = self.tokenizer
        fast = getattr(tok, "is_fast", False)
        enc = tok(passage, add_special_tokens=False, truncation=True, max_length=self.max_length,
                  return_offsets_mapping=fast)
        if len(enc["input_ids"]) < self.max_length:
            return passage
        if fast:
            return passage[:enc["offset_mapping"][-1][1]]
        return tok.decode(enc["input_ids"], skip_special_tokens=True)


def _forward_params(model) -> set[str]:
    import inspect

    try:
        return set(inspect.signature(model.forward).parameters)
    except (TypeError, ValueError):
        return set()


def load_judge(config, n_teachers: int, *, batch_size: int = 32) -> Judge | None:
    """The judge ``config.judge`` (a ``MineConfig``) names: None, the agreement judge, a
    ``CrossEncoderJudge`` over ``config.judge_model`` (a cross-encoder folder or cached hub id) or an
    ``LlmJudge`` over it (a causal LM; its tokenizer is loaded here, so a bad model fails before mining)."""
    model, margin = config.judge_model, config.judge_margin
    if config.judge not in ("cross-encoder", "llm"):
        from hardneg.mining.mine import make_judge

        return make_judge(config, n_teachers)
    kind = "a cross-encoder" if config.judge == "cross-encoder" else "a causal LM"
    if not model:
        raise HardnegError(f"--judge {config.judge} needs --judge-model ({kind} folder or cached hub id)")
    from hardneg.encode.models import resolve_model

    if config.judge == "cross-encoder":
        return CrossEncoderJudge(resolve_model(model), margin=margin, batch_size=batch_size)
    judge = LlmJudge(resolve_model(model), prompt=config.judge_prompt, threshold=config.judge_llm_threshold,
                     relative=config.judge_llm_relative, margin=margin, batch_size=config.judge_batch_size,
                     max_length=config.judge_max_length)
    answer_tokens(judge.tokenizer, judge.prompt)  # fail now, not after the teachers have mined
    return judge
