"""Training: config, examples (ids -> texts), prompts (prefixes + prefix-masked pooling), losses,
LoRA + decoder LLMs, the trainer and multi-stage recipes. Never imports mining: it reads the
negatives file through ``hardneg.data.negatives``.
"""

from hardneg.training.config import CHECKPOINTS, META_NAME, Source, TrainConfig
from hardneg.training.examples import build_dataset, build_examples
from hardneg.training.trainer import is_finished, train

__all__ = ["CHECKPOINTS", "META_NAME", "Source", "TrainConfig", "build_dataset", "build_examples", "is_finished",
           "train"]
