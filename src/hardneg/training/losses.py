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

from hardneg.training.config import DISTILL_SCORE_UNIT

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


def masked_infonce(logits: torch.Tensor, siblings: torch.Tensor, positives: str = "one",
                   excluded: torch.Tensor | None = None) -> torch.Tensor:
    """Mean InfoNCE of (B, C) scaled logits whose target of row i is column i, with ``siblings`` (B, C)
    the other known positives of row i's query: ``one`` drops them from the denominator, ``all`` adds
    them to the numerator. ``excluded`` (C,) bool: candidates left out of every row (padded slots).

    >>> lg = torch.tensor([[2.0, 0.0, 1.0]]); sib = torch.tensor([[False, False, True]])
    >>> round(masked_infonce(lg, sib, "one").item(), 4)    # -log(e^2 / (e^2 + e^0))
    0.1269
    >>> round(masked_infonce(lg, sib, "all").item(), 4)    # -log((e^2 + e^1) / (e^2 + e^0 + e^1))
    0.0943
    """
    own = torch.arange(len(logits), device=logits.device)
    if excluded is not None:
        logits = logits.masked_fill(excluded.to(logits.device).unsqueeze(0), float("-inf"))
        siblings = siblings & ~excluded.to(siblings.device).unsqueeze(0)
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
            pad = cand < 0  # PAD_CODE: a short row's empty slot (short_rows="pad"), no candidate of any row
            st = self.mask_stats
            st["batches"] += 1
            st["rows"] += len(sib)
            st["rows_masked"] += int(sib.any(dim=1).sum())
            st["cells_masked"] += int(sib.sum())
            if pad.any():
                st["padded_slots"] = st.get("padded_slots", 0) + int(pad.sum())
            return masked_infonce(logits, sib, self.positives, pad if pad.any() else None)

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


# --- distillation from the negatives file's teacher scores (``--distill``) ---------------------------
#
# Both terms work on logits over a row's own candidates {positive} ∪ its n hard negatives, column 0 the
# positive: the student's are cos(q, d) / τ (``own_negatives_logits``), the teacher's are its (per-row
# normalised) scores / τ_t, built by ``training.examples.teacher_labels``. ``mask`` (B, 1 + n) marks
# the cells that carry a teacher score; a row counts only with its positive and at least one negative
# marked, so a short row's masked cells change nothing (the loss equals that of the truncated row).

SCORE_UNIT = DISTILL_SCORE_UNIT  # teacher logits ride in the int64 ``label`` column as round(x * SCORE_UNIT)


def _masked_log_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log-softmax over the marked cells of each row; unmarked cells get a finite very low value (no inf/NaN)."""
    low = torch.finfo(logits.dtype).min / 4
    return torch.log_softmax(logits.masked_fill(~mask, low), dim=1)


def distill_kl(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the usable rows of KL(p_teacher || p_student), both softmaxes over the row's marked
    cells of (B, 1 + n) logits (teacher: no gradient). Not multiplied by τ² (Hinton's factor).

    >>> s = torch.tensor([[2.0, 0.0, 9.0]]); t = torch.tensor([[1.0, 0.0, 5.0]])
    >>> m = torch.tensor([[True, True, False]])
    >>> round(distill_kl(s, t, m).item(), 4)    # p_t = softmax(1, 0), p_s = softmax(2, 0)
    0.0826
    """
    student, teacher = student.float(), torch.where(mask, teacher.detach().float(), 0.0)  # unmarked: any value
    rows = mask[:, 0] & mask[:, 1:].any(dim=1)
    if not rows.any():
        return student.sum() * 0.0  # no teacher score in this batch: zero, still on the graph
    log_s = _masked_log_softmax(student, mask)
    log_t = _masked_log_softmax(teacher, mask)
    kl = torch.where(mask, log_t.exp() * (log_t - log_s), torch.zeros_like(log_s)).sum(dim=1)
    return kl[rows].mean()


def margin_mse(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the usable (positive, negative_j) pairs of ((s_+ - s_j) - (t_+ - t_j))², on (B, 1 + n)
    logits (MarginMSE, Hofstätter et al. 2020; teacher: no gradient).

    >>> s = torch.tensor([[2.0, 0.0, 1.0]]); t = torch.tensor([[1.0, 0.0, 5.0]])
    >>> margin_mse(s, t, torch.tensor([[True, True, True]])).item()    # ((2 - 1)² + (1 - -4)²) / 2
    13.0
    """
    student, teacher = student.float(), torch.where(mask, teacher.detach().float(), 0.0)  # unmarked: any value
    pairs = mask[:, 1:] & mask[:, :1]
    if not pairs.any():
        return student.sum() * 0.0
    err = (student[:, :1] - student[:, 1:]) - (teacher[:, :1] - teacher[:, 1:])  # (B, n)
    return err.pow(2)[pairs].mean()


DISTILL_TERMS = {"kl": distill_kl, "margin-mse": margin_mse}


def split_distill_labels(labels: torch.Tensor, n_codes: int, n_cands: int
                         ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """``label`` rows ``[codes (n_codes) | teacher logits × SCORE_UNIT (n_cands) | mask 0/1 (n_cands)]``
    -> (codes or None, teacher logits (B, n_cands) float, mask (B, n_cands) bool)."""
    if labels is None or labels.dim() != 2 or labels.size(1) != n_codes + 2 * n_cands:
        raise ValueError("DistillationLoss needs the 'label' column of hardneg.training.examples with the teacher "
                         f"scores ({n_codes} codes, then {n_cands} scores and {n_cands} mask flags per row)")
    codes = labels[:, :n_codes] if n_codes else None
    teacher = labels[:, n_codes:n_codes + n_cands].double().div(SCORE_UNIT).float()
    return codes, teacher, labels[:, n_codes + n_cands:].bool()


class DistillationLoss(nn.Module):
    """``base`` InfoNCE loss (e.g. ``MaskedRankingLoss``, MNRL, ``OwnNegativesRankingLoss``; None =
    distillation alone) + ``weight`` × a distillation term (``kind``: kl / margin-mse) on the same
    embeddings (one forward pass). Returns the two parts as a dict (the trainer sums and logs them).

    ``labels``: the ``label`` column of ``training.examples`` built with distillation: the base loss's
    ``n_codes`` codes (0 when it takes none), then the teacher logits and mask of the 1 + n candidates.
    Counts the rows and pairs that carried a teacher score (``distill_stats``).
    """

    def __init__(self, model: Any, base: nn.Module | None, kind: str, *, weight: float = 1.0,
                 num_negatives: int = 1, scale: float = 1.0 / DEFAULT_TEMPERATURE, n_codes: int = 0):
        super().__init__()
        if kind not in DISTILL_TERMS:
            raise ValueError(f"distillation kind must be one of {', '.join(DISTILL_TERMS)}, got {kind!r}")
        if num_negatives < 1 or not weight > 0 or not scale > 0:
            raise ValueError("distillation needs num_negatives >= 1, weight > 0 and scale > 0")
        self.model, self.base, self.kind = model, base, kind
        self.weight, self.num_negatives, self.scale, self.n_codes = weight, num_negatives, scale, n_codes
        self.distill_stats = {"batches": 0, "rows": 0, "rows_used": 0, "pairs_used": 0}

    def forward(self, sentence_features: Iterable[dict], labels: Any = None):
        from sentence_transformers.base.losses.merged_forward import embed_columns

        return self.compute_loss_from_embeddings(embed_columns(self.model, list(sentence_features)), labels)

    def compute_loss_from_embeddings(self, embeddings: list, labels: Any) -> dict[str, torch.Tensor]:
        n_cands = 1 + self.num_negatives
        if len(embeddings) != 1 + n_cands:
            raise ValueError(f"DistillationLoss expects anchor, positive and {self.num_negatives} negative columns")
        codes, teacher, mask = split_distill_labels(labels, self.n_codes, n_cands)
        student = own_negatives_logits(embeddings[0], embeddings[1:], self.scale)  # (B, 1 + n)
        teacher, mask = teacher.to(student.device), mask.to(student.device)
        st = self.distill_stats
        st["batches"] += 1
        st["rows"] += len(mask)
        st["rows_used"] += int((mask[:, 0] & mask[:, 1:].any(dim=1)).sum())
        st["pairs_used"] += int((mask[:, 1:] & mask[:, :1]).sum())
        out = {}
        if self.base is not None:
            out["infonce"] = self.base.compute_loss_from_embeddings(embeddings, codes)
        out[f"distill_{self.kind.replace('-', '_')}"] = self.weight * DISTILL_TERMS[self.kind](student, teacher, mask)
        return out

    def get_config_dict(self) -> dict[str, Any]:
        base = None if self.base is None else {"class": type(self.base).__name__, **self.base.get_config_dict()}
        return {"distill": self.kind, "distill_weight": self.weight, "student_scale": self.scale,
                "infonce": base}

    @property
    def mask_stats(self) -> dict | None:
        """The base loss's positives-mask counts (``MaskedRankingLoss``), for the model meta."""
        return getattr(self.base, "mask_stats", None)


def with_distillation(model: Any, base: nn.Module | None, kind: str, *, weight: float = 1.0, num_negatives: int = 1,
                      temperature: float = DEFAULT_TEMPERATURE, n_codes: int = 0) -> DistillationLoss:
    """``base`` (None: distillation alone) + ``weight`` × the ``kind`` term; ``n_codes`` = the number of
    id codes at the head of each ``label`` row (``2 + num_negatives`` with the positives mask, else 0)."""
    if base is not None and not hasattr(base, "compute_loss_from_embeddings"):
        raise ValueError(f"{type(base).__name__} cannot share embeddings with a distillation term")
    if getattr(base, "mini_batch_size", None):
        raise ValueError("distillation is not available with GradCache (--mini-batch-size) yet")
    return DistillationLoss(model, base, kind, weight=weight, num_negatives=num_negatives, scale=1.0 / temperature,
                            n_codes=n_codes)
