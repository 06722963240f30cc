"""Teachers: rank the corpus for training queries and hand mining a ``Candidates`` pool.

Implementations of ``hardneg.mining.candidates.Teacher``:

* ``DenseTeacher``     an embedding model; exact dot-product search (or a FAISS index, ``hardneg.search.ann``), ties by id.
* ``BM25Teacher``      bm25s, k1 0.9, b 0.4, English stemmer + stopwords (BEIR's setting).
* ``RandomTeacher``    uniform random non-positives (the paper's random baseline).
* ``RescoredTeacher``  a base teacher's pool (and the positives) rescored by a cross-encoder.

Every teacher's pool is cached on disk per (teacher fingerprint, data fingerprint, qids, depth)
by ``pool_cache.PoolCache``, so re-mining with another method or setting skips encoding and search: a cached
pool of depth D >= d serves a request for depth d by slicing (the ranking is exact and
deterministic, so the top d of a top-D list is the top-d list).
"""

from hardneg.mining.teachers.bm25 import BM25Teacher
from hardneg.mining.teachers.dense import DenseTeacher
from hardneg.mining.teachers.load import load_teacher
from hardneg.mining.teachers.pool_cache import CachedTeacher, PoolCache
from hardneg.mining.teachers.rescored import RescoredTeacher, load_cross_encoder
from hardneg.mining.teachers.uniform import RandomTeacher

__all__ = ["BM25Teacher", "CachedTeacher", "DenseTeacher", "PoolCache", "RandomTeacher", "RescoredTeacher",
           "load_cross_encoder", "load_teacher"]
