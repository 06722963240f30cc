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


def build_loss(model: Any, *, temperature: float = DEFAULT_TEMPERATURE, in_batch_negatives: bool = True,
               mini_batch_size: int | None = None, num_negatives: int = 1, gather_across_devices: bool = False):
    """The training loss for a config.

    ``mini_batch_size`` set -> GradCache (memory of one mini-batch, result of the full batch).
    ``gather_across_devices`` (DDP): in-batch negatives come from every GPU's batch, not just one.
    """
    if temperature <= 0:
        raise ValueError("temperature must be > 0")
    scale = 1.0 / temperature
    if in_batch_negatives:
        from sentence_transformers.sentence_transformer import losses as st_losses

        if mini_batch_size:
            return st_losses.CachedMultipleNegativesRankingLoss(model, scale=scale, mini_batch_size=mini_batch_size,
                                                                gather_across_devices=gather_across_devices)
        return st_losses.MultipleNegativesRankingLoss(model, scale=scale, gather_across_devices=gather_across_devices)
    if num_negatives < 1:
        raise ValueError("in-batch negatives off needs num_negatives >= 1 (nothing to contrast with)")
    if mini_batch_size:
        return _cached_own_class()(model, scale=scale, mini_batch_size=mini_batch_size)
    return OwnNegativesRankingLoss(model, scale=scale)
