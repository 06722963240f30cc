"""Contrastive losses: InfoNCE over {positive} ∪ mined negatives, with or without in-batch negatives.

With in-batch negatives ON this is exactly sentence-transformers' ``MultipleNegativesRankingLoss``
(or its GradCache twin ``CachedMultipleNegativesRankingLoss``) with ``scale = 1 / temperature``
and columns (anchor, positive, negative_1..n); :func:`build_loss` returns those.

sentence-transformers cannot switch the in-batch negatives off, so the OFF case is ours and small:
each query is scored only against its own positive and its own hard negatives::

    L_i = -log( exp(s(q_i, d_i+)/τ) / Σ_{d ∈ {d_i+} ∪ N_i} exp(s(q_i, d)/τ) )

Temperature default 0.05 (scale 20): the value sentence-transformers' MNRL defaults to and the one
all-MiniLM-L6-v2 / mpnet were trained with, so fine-tuning those models starts at the logit scale
they already use. NV-Retriever does not state τ (method.md); it is a flag (``--temperature``).

Several positives per query (datasets like NFCorpus, judge-relabelled passages): another positive of
query i can sit in the batch as another row's positive or hard negative, and plain MNRL would push
it away. :class:`MaskedRankingLoss` is MNRL with an id mask (:func:`masked_infonce`): every known
positive of query i other than its own target is taken out of its negatives (``positives="one"``)
or counted in the numerator with the target (``positives="all"``, the sum-inside-log multi-positive
InfoNCE). With no sibling positive in a batch both equal MNRL exactly.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
import torch.nn.functional as F
from torch import nn

DEFAULT_TEMPERATURE = 0.05


def own_negatives_logits(queries: torch.Tensor, docs: list[torch.Tensor], scale: float) -> torch.Tensor:
    """Cosine scores of each query against its own candidates only, times ``scale``: (B, 1 + n),
    the positive in column 0. ``docs`` is a list of (B, d) tensors: positives, then negative 1 .. n.

    >>> import torch
    >>> q = torch.tensor([[1.0, 0.0]]); pos = torch.tensor([[1.0, 0.0]]); neg = torch.tensor([[0.0, 1.0]])
    >>> own_negatives_logits(q, [pos, neg], scale=20.0).tolist()
    [[20.0, 0.0]]
    """
    cands = F.normalize(torch.stack(docs, dim=1), dim=-1)  # (B, 1+n, d)
    q = F.normalize(queries, dim=-1).unsqueeze(-1)  # (B, d, 1)
    return torch.bmm(cands, q).squeeze(-1) * scale  # (B, 1+n)


def own_negatives_loss(queries: torch.Tensor, docs: list[torch.Tensor], scale: float) -> torch.Tensor:
    """Mean InfoNCE over own positive + own hard negatives (no in-batch negatives)."""
    logits = own_negatives_logits(queries, docs, scale)
    target = torch.zeros(len(logits), dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits, target)


class OwnNegativesRankingLoss(nn.Module):
    """InfoNCE with the example's own hard negatives only (in-batch negatives OFF).

    Inputs: (anchor, positive, negative_1, ..., negative_n) columns, n >= 1.
    """

    def __init__(self, model: Any, scale: float = 1.0 / DEFAULT_TEMPERATURE):
        super().__init__()
        if not scale > 0:
            raise ValueError("scale must be positive")
        self.model = model
        self.scale = scale

    def forward(self, sentence_features: Iterable[dict], labels: Any = None):
        from sentence_transformers.base.losses.merged_forward import embed_columns

        embeddings = embed_columns(self.model, list(sentence_features))
        return self.compute_loss_from_embeddings(embeddings, labels)

    def compute_loss_from_embeddings(self, embeddings: list, labels: Any = None):
        if len(embeddings) < 3:
            raise ValueError("in-batch negatives off needs at least one hard negative column "
                             "(anchor, positive, negative_1, ...)")
        return own_negatives_loss(embeddings[0], embeddings[1:], self.scale)

    def get_config_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "in_batch_negatives": False}

    @property
    def temperature(self) -> float:
        return 1.0 / self.scale


def _cached_own_class():
    """Built lazily: the GradCache mixin lives in sentence-transformers (a heavy import)."""
    from sentence_transformers.base.losses.gradcache import CachedLossMixin

    class CachedOwnNegativesRankingLoss(CachedLossMixin, OwnNegativesRankingLoss):
        """GradCache version of :class:`OwnNegativesRankingLoss` for large batches."""

        def __init__(self, model: Any, scale: float = 1.0 / DEFAULT_TEMPERATURE, mini_batch_size: int = 32):
            OwnNegativesRankingLoss.__init__(self, model, scale)
            self.mini_batch_size = mini_batch_size

        def forward(self, sentence_features: Iterable[dict], labels: Any = None):
            return self.forward_cached(list(sentence_features), labels)

        def calculate_loss(self, reps: list, labels: Any = None, *, with_backward: bool = False):
            # the loss is per-row, so no chunking is needed: one small (B, 1+n) logits matrix
            embeddings = [torch.cat(r) for r in reps]
            loss = self.compute_loss_from_embeddings(embeddings)
            if with_backward:
                loss.backward()
                loss = loss.detach()
            return loss

        def get_config_dict(self) -> dict[str, Any]:
            return {**super().get_config_dict(), "mini_batch_size": self.mini_batch_size}

    return CachedOwnNegativesRankingLoss


def sibling_mask(cand: torch.Tensor, query: torch.Tensor, known: dict[int, torch.Tensor]) -> torch.Tensor:
    """(B, C) bool: candidate j is a known positive of row i's query, other than row i's own target
    (column i). ``cand`` (C,) candidate codes, ``query`` (B,) query codes, ``known`` code -> positives.

    >>> sibling_mask(torch.tensor([10, 11, 12, 13]), torch.tensor([0, 1]), {0: torch.tensor([10, 13]), 1: torch.tensor([11])}).tolist()
    [[False, False, False, True], [False, False, False, False]]
    """
    rows = [torch.isin(cand, known.get(int(q), cand.new_empty(0))) for q in query.tolist()]
    mask = torch.stack(rows) if rows else torch.zeros((0, len(cand)), dtype=torch.bool)
    own = torch.arange(len(query))
    mask[own, own] = False
    return mask


def masked_infonce(logits: torch.Tensor, siblings: torch.Tensor, positives: str = "one") -> torch.Tensor:
    """Mean InfoNCE of (B, C) scaled logits whose target of row i is column i, with ``siblings`` (B, C)
    the other known positives of row i's query: ``one`` drops them from the denominator, ``all`` adds
    them to the numerator.

    >>> lg = torch.tensor([[2.0, 0.0, 1.0]]); sib = torch.tensor([[False, False, True]])
    >>> round(masked_infonce(lg, sib, "one").item(), 4)    # -log(e^2 / (e^2 + e^0))
    0.1269
    >>> round(masked_infonce(lg, sib, "all").item(), 4)    # -log((e^2 + e^1) / (e^2 + e^0 + e^1))
    0.0943
    """
    own = torch.arange(len(logits), device=logits.device)
    if positives == "one":
        masked = logits.masked_fill(siblings, float("-inf"))
        return -(masked[own, own] - torch.logsumexp(masked, dim=1)).mean()
    if positives == "all":
        target = siblings.clone()
        target[own, own] = True
        num = torch.logsumexp(logits.masked_fill(~target, float("-inf")), dim=1)
        return -(num - torch.logsumexp(logits, dim=1)).mean()
    raise ValueError(f"positives must be 'one' or 'all', got {positives!r}")


def _masked_class():
    """Built lazily: subclasses sentence-transformers' MNRL (a heavy import)."""
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    class MaskedRankingLoss(MultipleNegativesRankingLoss):
        """sentence-transformers' MNRL (query -> docs, joint softmax) with the id mask of
        :func:`masked_infonce`. Needs the ``label`` column of ``training.examples`` (codes
        ``[query, positive, negatives...]``) and the known-positives table; counts how often the
        mask fires (``mask_stats``)."""

        def __init__(self, model: Any, known: dict[int, list[int]], scale: float = 1.0 / DEFAULT_TEMPERATURE,
                     positives: str = "one"):
            super().__init__(model, scale=scale)
            if positives not in ("one", "all"):
                raise ValueError(f"positives must be 'one' or 'all', got {positives!r}")
            self.known = {int(q): torch.tensor(sorted(set(p)), dtype=torch.long) for q, p in known.items()}
            self.positives = positives
            self.mask_stats = {"batches": 0, "rows": 0, "rows_masked": 0, "cells_masked": 0}

        def compute_loss_from_embeddings(self, embeddings: list, labels: Any):
            if labels is None or labels.dim() != 2 or labels.size(1) != len(embeddings):
                raise ValueError("MaskedRankingLoss needs the 'label' codes column [query, positive, negatives...] "
                                 "of hardneg.training.examples (one code per text column)")
            queries, docs = embeddings[0], torch.cat(embeddings[1:], dim=0)
            logits = self.similarity_fct(queries, docs) * self.scale  # (B, B * (1 + n))
            cand = labels[:, 1:].T.reshape(-1).cpu()  # positives of all rows, then negative_1 of all rows, ...
            sib = sibling_mask(cand, labels[:, 0].cpu(), self.known).to(logits.device)
            st = self.mask_stats
            st["batches"] += 1
            st["rows"] += len(sib)
            st["rows_masked"] += int(sib.any(dim=1).sum())
            st["cells_masked"] += int(sib.sum())
            return masked_infonce(logits, sib, self.positives)

        def get_config_dict(self) -> dict[str, Any]:
            return {**super().get_config_dict(), "positives": self.positives, "mask": "known positives by id"}

    return MaskedRankingLoss


def build_loss(model: Any, *, temperature: float = DEFAULT_TEMPERATURE, in_batch_negatives: bool = True,
               mini_batch_size: int | None = None, num_negatives: int = 1, gather_across_devices: bool = False,
               known: dict[int, list[int]] | None = None, positives: str = "one"):
    """The training loss for a config.

    ``mini_batch_size`` set -> GradCache (memory of one mini-batch, result of the full batch).
    ``gather_across_devices`` (DDP): in-batch negatives come from every GPU's batch, not just one.
    ``known`` (query code -> positive codes, from ``training.examples``): the id-masked MNRL
    (``MaskedRankingLoss``); not combined with GradCache or DDP gathering yet (a warning says so and
    plain MNRL is used, recorded in the model's meta as ``loss``).
    """
    if temperature <= 0:
        raise ValueError("temperature must be > 0")
    scale = 1.0 / temperature
    if in_batch_negatives:
        from sentence_transformers.sentence_transformer import losses as st_losses

        if known is not None and not mini_batch_size and not gather_across_devices:
            return _masked_class()(model, known, scale=scale, positives=positives)
        if known is not None:
            if positives == "all":
                raise ValueError("--positives all is not available with --mini-batch-size or multi-GPU gathering yet")
            import logging

            logging.getLogger(__name__).warning(
                "the positives mask is not applied with --mini-batch-size or multi-GPU gathering: plain MNRL is used")

        if mini_batch_size:
            return st_losses.CachedMultipleNegativesRankingLoss(model, scale=scale, mini_batch_size=mini_batch_size,
                                                                gather_across_devices=gather_across_devices)
        return st_losses.MultipleNegativesRankingLoss(model, scale=scale, gather_across_devices=gather_across_devices)
    if num_negatives < 1:
        raise ValueError("in-batch negatives off needs num_negatives >= 1 (nothing to contrast with)")
    if mini_batch_size:
        return _cached_own_class()(model, scale=scale, mini_batch_size=mini_batch_size)
    return OwnNegativesRankingLoss(model, scale=scale)
