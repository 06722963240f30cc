"""Foundations every stage shares: errors, atomic files + hashes, provenance, the cache root,
the model fingerprint, number summaries. Imports nothing else of hardneg."""
