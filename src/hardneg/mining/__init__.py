"""Hard-negative mining: pure masks (``filters``), selection (``select``), ensembles (``ensemble``),
run statistics (``stats``) and ``mine()``; teachers that produce candidate pools live in
``mining.teachers``.

>>> from hardneg.mining import MineConfig
>>> MineConfig().method, MineConfig().perc
('percpos', 0.95)
"""

from hardneg.mining.candidates import Candidates, Teacher
from hardneg.mining.config import MineConfig
from hardneg.mining.mine import MineResult, mine

__all__ = ["Candidates", "MineConfig", "MineResult", "Teacher", "mine"]
