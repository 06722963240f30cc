"""Encoders: the ``Encoder`` protocol, torch and ONNX backends, the weight-keyed embedding cache.

``load_encoder(spec, backend=...)`` (``encode.load``) is the entry point; ``encode_cached``
(``encode.cache``) stores vectors on disk keyed by the encoder's fingerprint, the kind and the texts.
"""

from hardneg.encode.base import ENCODER_BACKENDS, POOLINGS, BatchEncoder, Encoder, encoder_dim, length_order, pool
from hardneg.encode.cache import encode_cached
from hardneg.encode.load import load_encoder
from hardneg.encode.models import resolve_model

__all__ = ["ENCODER_BACKENDS", "POOLINGS", "BatchEncoder", "Encoder", "encode_cached", "encoder_dim", "length_order",
           "load_encoder", "pool", "resolve_model"]
