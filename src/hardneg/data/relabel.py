"""Judge-relabelled positives (``NegRow.relabeled``, ``--false-negatives relabel``) as their consumers see
them: a query's known positives (its rows' positives, then the relabelled passages) and the extra
(query, relabelled passage) rows that training and every export add, sharing the query's negatives.
One implementation, so ``hardneg train`` and ``hardneg export`` agree row for row.
"""

from __future__ import annotations

from hardneg.data.negatives import NegRow


def known_positives(rows) -> dict[str, list[str]]:
    """Per query, its rows' positives then its relabelled passages, in order, without repeats.

    >>> r = [NegRow("q", "a", 1.0, [], [], [], ["c"]), NegRow("q", "b", 1.0, [], [], [])]
    >>> known_positives(r)
    {'q': ['a', 'b', 'c']}
    """
    pos: dict[str, dict[str, None]] = {}
    for r in rows:
        pos.setdefault(r.qid, {})[r.pos_id] = None
    for r in rows:
        for d in getattr(r, "relabeled", []):
            pos[r.qid].setdefault(d, None)
    return {q: list(p) for q, p in pos.items()}


def with_relabeled_rows(rows) -> tuple[list, int]:
    """Rows plus one row per relabelled passage not already a row positive, placed after its query's
    first row and sharing that row's negatives; returns (rows, rows added).

    >>> r = [NegRow("q", "a", 1.0, ["x"], [0.5], ["t"], ["c"]), NegRow("q", "b", 1.0, ["y"], [0.4], ["t"], ["c"])]
    >>> out, added = with_relabeled_rows(r)
    >>> [(x.pos_id, x.neg_ids) for x in out], added
    ([('a', ['x']), ('c', ['x']), ('b', ['y'])], 1)
    """
    row_pos = {(r.qid, r.pos_id) for r in rows}
    out, done, added = [], set(), 0
    for r in rows:
        out.append(r)
        if r.qid in done:
            continue
        done.add(r.qid)
        for d in getattr(r, "relabeled", []):
            if (r.qid, d) not in row_pos:
                row_pos.add((r.qid, d))
                out.append(NegRow(r.qid, d, None, list(r.neg_ids), list(r.neg_scores), list(r.neg_teachers)))
                added += 1
    return out, added
