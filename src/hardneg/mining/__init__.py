"""Hard-negative mining: filters.py (pure masks), select.py (top / sampled), ensemble.py, mine()."""
