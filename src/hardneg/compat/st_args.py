"""The drop-in's argument checks: sentence-transformers' normalisation (deprecated names, forced formats)
plus the checks it lacks, each a ``HardnegError`` naming the parameter.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from hardneg.compat.tables import OUTPUT_FORMATS
from hardneg.core.errors import HardnegError
from hardneg.mining.filters import METHODS

log = logging.getLogger(__name__)

SHORTFALL = ("drop", "keep")


@dataclass(frozen=True)
class DropinArgs:
    """The arguments after the peer's normalisation (deprecated names, forced formats)."""

    anchor: str
    positive: str
    output_format: str
    output_scores: bool
    absolute_margin: float | None
    include_positives: bool


def check_args(dataset, model, anchor_column_name, positive_column_name, output_format, output_scores, as_triplets,
                margin, absolute_margin, include_positives, range_min, range_max, num_negatives, sampling_strategy,
                batch_size, faiss_batch_size, use_faiss, use_multi_process, on_shortfall, method, selection, teachers,
                judge, voters) -> DropinArgs:
    """The peer's checks and normalisation, plus the ones it lacks (each a HardnegError naming the parameter)."""
    if len(dataset) == 0:
        raise HardnegError("the dataset is empty: pass a Dataset of (anchor, positive) pairs")
    if faiss_batch_size <= 0 or batch_size <= 0:
        raise HardnegError(f"faiss_batch_size and batch_size must be positive integers, got {faiss_batch_size} "
                           f"and {batch_size}")
    if num_negatives < 1:
        raise HardnegError(f"num_negatives must be at least 1, got num_negatives={num_negatives}")
    if sampling_strategy not in ("top", "random"):
        raise HardnegError(f"sampling_strategy must be 'top' or 'random', got {sampling_strategy!r}")
    if on_shortfall not in SHORTFALL:
        raise HardnegError(f"on_shortfall must be 'drop' or 'keep', got {on_shortfall!r} (a short row is counted "
                           "either way; to search deeper, raise range_max)")
    if method is not None and method not in METHODS:
        raise HardnegError(f"unknown method {method!r}; choose one of: {', '.join(METHODS)}")
    if selection is not None and sampling_strategy != "top":
        raise HardnegError(f"selection={selection!r} replaces sampling_strategy: leave sampling_strategy 'top'")
    columns = list(dataset.column_names)
    for name, value in (("anchor_column_name", anchor_column_name), ("positive_column_name", positive_column_name)):
        if value is not None and value not in columns:
            raise HardnegError(f"{name}={value!r} is not a column of the dataset (columns: {columns})")
    if positive_column_name is None and len(columns) < 2:
        raise HardnegError("the dataset needs at least two columns to take the positive column from")
    anchor, positive = anchor_column_name or columns[0], positive_column_name or columns[1]
    if as_triplets is not None:
        output_format = "triplet" if as_triplets else "n-tuple"
        log.warning("as_triplets is deprecated: use output_format (set to %r)", output_format)
    if output_format == "n-tuple-scores":
        log.warning('output_format="n-tuple-scores" is deprecated: use "n-tuple" with output_scores=True')
        output_format, output_scores = "n-tuple", True
    if margin is not None:
        absolute_margin = margin
        log.warning("margin is deprecated: use absolute_margin and/or relative_margin (absolute_margin=%s)", margin)
    if output_format not in OUTPUT_FORMATS:
        raise HardnegError(f"invalid output_format {output_format!r}: choose one of {', '.join(OUTPUT_FORMATS)}")
    if include_positives:
        if method or selection or teachers or judge or voters:
            raise HardnegError("include_positives builds a first-stage ranking: it takes no method, selection, "
                               "extra teachers or judge")
        if range_min != 0 or range_max is not None or sampling_strategy != "top":
            log.warning("include_positives: range_min, range_max and sampling_strategy can still leave positives out "
                        "of the ranking (the score rules cannot: positives are exempt from them)")
        if output_format != "n-tuple":
            log.warning('include_positives: output_format set to "n-tuple" so the ranking order is kept')
            output_format = "n-tuple"
    if use_multi_process:
        log.info("use_multi_process is ignored: hardneg encodes in this process (engine=EngineConfig('ray') "
                 "distributes encoding)")
    if use_faiss:
        log.info("use_faiss: hardneg's exact search is used (same results; search_backend picks an ANN index)")
    sim = getattr(model, "similarity_fn_name", None)
    if isinstance(sim, str) and sim not in ("cosine", "dot"):
        log.warning("model similarity %r: hardneg scores with the dot product of normalised embeddings (cosine)", sim)
    return DropinArgs(anchor, positive, output_format, bool(output_scores), absolute_margin, bool(include_positives))
