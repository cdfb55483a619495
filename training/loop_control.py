"""What the training loop needs besides the model: the steps-per-second window of its log lines and the Ctrl-C
request that stops it at a step boundary with a checkpoint (:class:`TrainingInterrupted`)."""
from __future__ import annotations

import os
import signal
import threading
import time


class RateWindow:
    """Steps per second and the mean loss since the last log line."""

    def __init__(self):
        self.start, self.losses = time.perf_counter(), []

    def add(self, loss: float) -> None:
        self.losses.append(loss)

    def take(self) -> tuple[float, float]:
        elapsed = time.perf_counter() - self.start
        rate = len(self.losses) / elapsed if elapsed > 0 else float("nan")
        mean = sum(self.losses) / len(self.losses)
        self.start, self.losses = time.perf_counter(), []
        return rate, mean


class TrainingInterrupted(Exception):
    """Ctrl-C stopped the run at a step boundary, after saving a checkpoint of that step."""

    def __init__(self, step: int, checkpoint):
        super().__init__(f"interrupted at step {step}; checkpoint {checkpoint}; resume with --resume latest")
        self.step, self.checkpoint = step, checkpoint


class StopRequest:
    """The first Ctrl-C (SIGINT) asks the run to stop after the current optimizer step, with a checkpoint; a
    second one stops at once (Python's KeyboardInterrupt). Only in the main thread of a single process: under
    torchrun every rank would have to agree on the step to stop at."""

    def __init__(self, log):
        self.requested, self._previous, self._log = False, None, log

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread() or int(os.environ.get("WORLD_SIZE", "1")) > 1:
            return
        self._previous = signal.getsignal(signal.SIGINT)

        def handler(signum, frame):
            if self.requested:
                signal.signal(signal.SIGINT, self._previous)
                raise KeyboardInterrupt
            self.requested = True
            self._log("Ctrl-C: stopping after this step with a checkpoint (press it again to stop at once)")

        signal.signal(signal.SIGINT, handler)

    def uninstall(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
