"""Hard-negative mining: filters.py (pure masks), select.py (top / sampled), ensemble.py, mine().

>>> from hardneg.mining import MineConfig
>>> MineConfig().method, MineConfig().perc
('percpos', 0.95)
"""

from hardneg.mining.config import MineConfig
from hardneg.mining.core import MineResult, NegRow, mine
from hardneg.mining.output import read_negatives, write_negatives

__all__ = ["MineConfig", "MineResult", "NegRow", "mine", "read_negatives", "write_negatives"]
