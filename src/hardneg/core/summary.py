"""One summary of a list of numbers (count, mean, std, min, quantiles, max), used by mining's stats
and by the negatives diagnostics alike.

>>> summarize([1.0, 2.0, 3.0])["mean"], summarize([])["count"]
(2.0, 0)
"""

from __future__ import annotations

import numpy as np

QUANTILES = (5, 25, 50, 75, 95)


def summarize(values) -> dict:
    """count, mean, std, min, quantiles 5/25/50/75/95, max of ``values`` (None when empty)."""
    v = np.asarray(list(values), dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"count": 0, "mean": None, "std": None, "min": None,
                **{f"q{q:02d}": None for q in QUANTILES}, "max": None}
    qs = np.percentile(v, QUANTILES)
    out = {"count": int(v.size), "mean": float(v.mean()), "std": float(v.std()), "min": float(v.min())}
    out.update({f"q{q:02d}": float(x) for q, x in zip(QUANTILES, qs)})
    out["max"] = float(v.max())
    return {k: round(x, 6) if isinstance(x, float) else x for k, x in out.items()}
