"""Drop-ins for other libraries' entry points, mapped onto hardneg's own stages.

``sentence_transformers``: ``mine_hard_negatives(dataset, model, ...)``, sentence-transformers 6's
signature and output columns over hardneg's mining (ids derived from the texts, positives removed by
id, sign-safe margins, counted shortfalls, bounded-memory search); ``st_encoder`` wraps an already
loaded ``SentenceTransformer`` as a hardneg ``Encoder``; ``window`` is the pure part (the peer's
score rules and rank window over a ``Candidates`` pool); ``tables`` turns mined rows into the peer's
four output formats.

An orchestration layer like ``experiment``: it may import core, data, encode, search, scale, mining
and mining.teachers; ``experiment`` and ``cli`` may import it.
"""
