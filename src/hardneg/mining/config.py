"""``MineConfig``: every knob of a mining run, validated once, saved in the output's meta file."""

from __future__ import annotations

from dataclasses import dataclass

from hardneg.core.errors import HardnegError
from hardneg.core.options import opt
from hardneg.mining.ensemble import ENSEMBLES
from hardneg.mining.filters import METHODS, POSITIVE_SCORE
from hardneg.mining.judges import FN_ACTIONS, JUDGES
from hardneg.mining.select import SELECTIONS

SHORTFALL = ("keep", "drop", "deepen")
DEFAULT_LLM_PROMPT = "Query: {query}\nPassage: {passage}\nIs the passage relevant to the query? Answer yes or no.\nAnswer:"
METHOD, SELECTION, JUDGE = "method", "selection", "false negatives"  # --help groups


@dataclass(frozen=True)
class MineConfig:
    """Mining settings; defaults are the paper's best single-teacher setting (TopK-PercPos 95%, 4 top).

    Choices the paper leaves open:
    * ``depth=100`` candidates per query and teacher before filtering: enough for shifted-10 plus
      sampling from the top-10 plus ~40 positives (NFCorpus), while the (Q, 100) pool stays small
      and cacheable; rows that still fall short are handled by ``on_shortfall`` (``deepen``
      doubles the depth for just those queries). Ignored for precomputed ``Candidates``.
    * ``sample_temperature=0.1`` on the teacher's score scale: across a cosine top-10 (spread
      ~0.05-0.1) the best is ~1.6-2.7x likelier than the 10th. Raise it for BM25 scales (~1-2).
    * ``min_score`` floor is inclusive (keep s >= min_score); ``None`` disables it.
    * ``ensemble`` applies only with several teachers; default ``intra-nodedup`` (paper's best).
    """

    method: str = opt("percpos", "filter applied to the candidates (percpos is the paper's best)",
                      choices=METHODS, group=METHOD)
    shift: int = opt(10, "shifted: skip this many top non-positives", group=METHOD)
    max_score: float = opt(0.7, "abs: keep scores below this", group=METHOD)
    margin: float = opt(0.05, "marginpos: keep s < p - margin", group=METHOD)
    perc: float = opt(0.95, "percpos: keep s < p - |p|(1-perc)", group=METHOD)
    min_score: float | None = opt(None, "optional floor: also require s >= this", default_help="off", group=METHOD)
    positive_score: str = opt("min", "p from several positives (min, as NVIDIA's code)",
                              choices=POSITIVE_SCORE, group=METHOD)
    num_negatives: int = opt(4, "negatives per (query, positive) row; 4 as in the paper's ablation (train uses the "
                             "first of them unless its own --num-negatives, default 1, asks for more)", group=SELECTION)
    select: str = opt("top", "how negatives are picked from the survivors", choices=SELECTIONS, group=SELECTION)
    sample_from: int = opt(10, "sampled: from the top K survivors", group=SELECTION)
    sample_temperature: float = opt(0.1, "sampled: softmax temperature on the teacher's score scale (~1-2 for BM25)",
                                    group=SELECTION)
    depth: int = opt(100, "candidates retrieved per query before filtering", group=SELECTION)
    on_shortfall: str = opt("keep", "rows with fewer than n survivors: keep them short, drop them, or re-search "
                            "deeper (all counted)", choices=SHORTFALL, group=SELECTION)
    ensemble: str = opt("intra-nodedup", "how several teachers combine (intra-nodedup is the paper's best)",
                        choices=ENSEMBLES, group=SELECTION)
    seed: int = opt(42, "random seed; same seed -> identical output", group=SELECTION)
    anchor_only: bool = opt(False, "only each query's first positive is known (for the false-negative "
                            "analysis of 'inspect')", group=SELECTION)
    simans_a: float = opt(20.0, "simans: sharpness a of exp(-a (s - p - b)^2) on the teacher's score scale "
                          "(~0.05-0.5 for BM25)", group=SELECTION)
    simans_b: float = opt(0.0, "simans: shift b of the peak from the positive's score", group=SELECTION)
    judge: str = opt("none", "false-negative judge run on the survivors: agreement = flagged when at least "
                     "--judge-min-votes teachers score it at or above their own positive's PercPos threshold; "
                     "cross-encoder / llm = a model (--judge-model) scores each survivor and the positives",
                     choices=JUDGES, group=JUDGE)
    judge_min_votes: int = opt(1, "agreement: teachers that must agree", group=JUDGE)
    judge_frac: float = opt(0.95, "agreement: a teacher votes when s >= p - |p|(1-frac)", group=JUDGE)
    false_negatives: str = opt("remove", "what happens to a flagged candidate: remove it, keep it (flag only), "
                               "or drop-query (leave out queries with more than --drop-query-over flags)",
                               choices=FN_ACTIONS, group=JUDGE)
    drop_query_over: int = opt(5, "drop-query: the most flagged passages a query may have", group=JUDGE)
    judge_model: str | None = opt(None, "cross-encoder / llm: the judge model (a folder or a cached hub id; "
                                  "llm: any causal LM)", default_help="none", metavar="MODEL", group=JUDGE)
    judge_margin: float = opt(0.0, "cross-encoder: flag when ce(candidate) >= ce(positive) - margin; llm with "
                              "--judge-llm-relative: when P(yes|candidate) >= P(yes|positive) - margin", group=JUDGE)
    judge_llm_threshold: float = opt(0.5, "llm: flag when P(yes) >= this, P(yes) = softmax of the next-token "
                                     "logits of ' yes' / ' no' (0.5: the model answers yes rather than no)",
                                     group=JUDGE)
    judge_llm_relative: bool = opt(False, "llm: flag relative to the query's positive instead: P(yes|candidate) "
                                   ">= min P(yes|positive) - --judge-margin", group=JUDGE)
    judge_prompt: str = opt(DEFAULT_LLM_PROMPT, "llm: the yes/no prompt, with {query} and {passage} ('\\n' = "
                            "newline; end it just before the answer word)", default_help=repr(DEFAULT_LLM_PROMPT),
                            convert=lambda s: s.replace("\\n", "\n"), group=JUDGE)
    judge_max_length: int = opt(512, "llm: passage tokens kept (the rest is cut)", group=JUDGE)
    judge_batch_size: int = opt(16, "llm: prompts per forward pass (left-padded)", group=JUDGE)

    def __post_init__(self) -> None:
        _choice("method", self.method, METHODS)
        _choice("positive_score", self.positive_score, POSITIVE_SCORE)
        _choice("select", self.select, SELECTIONS)
        _choice("on_shortfall", self.on_shortfall, SHORTFALL)
        _choice("ensemble", self.ensemble, ENSEMBLES)
        if not 0.0 < self.perc <= 1.0:
            raise HardnegError(f"perc must be in (0, 1], got {self.perc} (the paper's best is 0.95)")
        if self.margin < 0:
            raise HardnegError(f"margin must be >= 0, got {self.margin} (the paper's best is 0.05)")
        if self.shift < 0:
            raise HardnegError(f"shift must be >= 0, got {self.shift} (the paper's best is 10)")
        if self.num_negatives < 1:
            raise HardnegError(f"num_negatives must be >= 1, got {self.num_negatives}")
        if self.depth < 1:
            raise HardnegError(f"depth must be >= 1, got {self.depth}")
        if self.depth < self.num_negatives and self.on_shortfall != "deepen":
            raise HardnegError(f"depth ({self.depth}) is below num_negatives ({self.num_negatives}): every row would "
                               f"be short; raise --depth well above --num-negatives (positives and filtered "
                               f"candidates come out of it too; default 100) or pass --on-shortfall deepen")
        _choice("judge", self.judge, JUDGES)
        _choice("false_negatives", self.false_negatives, FN_ACTIONS)
        if self.judge_min_votes < 1 or self.drop_query_over < 0:
            raise HardnegError(f"judge_min_votes must be >= 1 and drop_query_over >= 0, got {self.judge_min_votes}, "
                               f"{self.drop_query_over}")
        if not 0.0 < self.judge_frac <= 1.5:
            raise HardnegError(f"judge_frac must be in (0, 1.5], got {self.judge_frac}")
        if not 0.0 <= self.judge_llm_threshold <= 1.0:
            raise HardnegError(f"judge_llm_threshold must be in [0, 1] (a probability), got {self.judge_llm_threshold}")
        if self.judge_max_length < 1 or self.judge_batch_size < 1:
            raise HardnegError(f"judge_max_length and judge_batch_size must be >= 1, got {self.judge_max_length}, "
                               f"{self.judge_batch_size}")
        check_judge_prompt(self.judge_prompt)
        if self.simans_a <= 0:
            raise HardnegError(f"simans_a must be > 0, got {self.simans_a}")
        if self.sample_temperature <= 0:
            raise HardnegError(f"sample_temperature must be > 0, got {self.sample_temperature}")
        if self.select in ("sampled", "top1-sampled") and self.sample_from < self.num_negatives:
            raise HardnegError(f"sample_from ({self.sample_from}) must be >= num_negatives "
                               f"({self.num_negatives}) to sample {self.num_negatives} of the top {self.sample_from}")
        for name in ("max_score", "margin", "perc", "sample_temperature", "simans_a", "simans_b") + (("min_score",) if self.min_score is not None else ()):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or v != v:
                raise HardnegError(f"{name} must be a number, got {v!r}")

    def filter_params(self) -> dict:
        """The keyword arguments ``filters.method_mask`` takes."""
        return {"shift": self.shift, "max_score": self.max_score, "margin": self.margin, "perc": self.perc}


def check_judge_prompt(template) -> str:
    """The llm judge's prompt, checked: a str with the placeholders ``{query}`` and ``{passage}`` and no
    others (write a literal brace as ``{{`` / ``}}``).

    >>> check_judge_prompt("Q: {query} P: {passage}")
    'Q: {query} P: {passage}'
    >>> check_judge_prompt("Q: {query}")
    Traceback (most recent call last):
    hardneg.core.errors.HardnegError: judge_prompt needs the placeholder {passage}: got 'Q: {query}'
    """
    if not isinstance(template, str):
        raise HardnegError(f"judge_prompt must be a str with {{query}} and {{passage}}, got {template!r}")
    for name in ("query", "passage"):
        if "{" + name + "}" not in template:
            raise HardnegError(f"judge_prompt needs the placeholder {{{name}}}: got {template!r}")
    try:
        template.format(query="", passage="")
    except (KeyError, IndexError, ValueError) as e:
        raise HardnegError(f"judge_prompt may only use {{query}} and {{passage}} (write a literal brace as {{{{ or "
                           f"}}}}): {type(e).__name__} {e} in {template!r}") from None
    return template


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise HardnegError(f"unknown {name} {value!r}; choose one of: {', '.join(allowed)}")
