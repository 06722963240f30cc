"""Trainer callbacks: readable loss logging and a step bar that does not print raw log dicts."""

from __future__ import annotations

import logging

log = logging.getLogger("hardneg.training")


def loss_logger():
    from transformers import TrainerCallback

    class LossLog(TrainerCallback):
        """Logs each training loss through ``logging`` (the tqdm bar shows progress)."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                log.info("step %d/%d loss %.4f lr %.2e", state.global_step, state.max_steps, logs["loss"],
                         logs.get("learning_rate", float("nan")))

    return LossLog()


def quiet_progress(trainer) -> None:
    """Keep transformers' step bar but stop it printing raw ``{'loss': ...}`` dicts to stdout
    (LossLog already logs each loss readably)."""
    from transformers.trainer_callback import ProgressCallback

    class QuietProgress(ProgressCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            return None

    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(QuietProgress())
