"""``MineConfig``: every knob of a mining run, validated once, saved in the output's meta file."""

from __future__ import annotations

from dataclasses import dataclass

from hardneg.core.errors import HardnegError
from hardneg.mining.ensemble import ENSEMBLES
from hardneg.mining.filters import METHODS, POSITIVE_SCORE
from hardneg.mining.select import SELECTIONS

SHORTFALL = ("keep", "drop", "deepen")


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

    method: str = "percpos"
    shift: int = 10
    max_score: float = 0.7
    margin: float = 0.05
    perc: float = 0.95
    min_score: float | None = None
    positive_score: str = "min"
    num_negatives: int = 4
    select: str = "top"
    sample_from: int = 10
    sample_temperature: float = 0.1
    depth: int = 100
    on_shortfall: str = "keep"
    ensemble: str = "intra-nodedup"
    seed: int = 42
    anchor_only: bool = False

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
        if self.sample_temperature <= 0:
            raise HardnegError(f"sample_temperature must be > 0, got {self.sample_temperature}")
        if self.select != "top" and self.sample_from < self.num_negatives:
            raise HardnegError(f"sample_from ({self.sample_from}) must be >= num_negatives "
                               f"({self.num_negatives}) to sample {self.num_negatives} of the top {self.sample_from}")
        for name in ("max_score", "margin", "perc", "sample_temperature") + (("min_score",) if self.min_score is not None else ()):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or v != v:
                raise HardnegError(f"{name} must be a number, got {v!r}")

    def filter_params(self) -> dict:
        """The keyword arguments ``filters.method_mask`` takes."""
        return {"shift": self.shift, "max_score": self.max_score, "margin": self.margin, "perc": self.perc}


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise HardnegError(f"unknown {name} {value!r}; choose one of: {', '.join(allowed)}")
