"""hardneg: positive-aware hard-negative mining and contrastive fine-tuning of embedding models.

Pipeline stages, one module each: ``data`` -> ``encode`` -> ``search`` -> ``mining`` ->
``train`` -> ``evaluate`` (over ``metrics``) -> ``report``; ``cli`` wires them together.
"""

__version__ = "0.1.0"

from hardneg.errors import HardnegError  # noqa: E402,F401
