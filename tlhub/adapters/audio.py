"""Audio helpers shared by audio adapters: 16-bit PCM WAV files with the standard library.

What a Space's audio examples and the tests need; decoding (MP3, FLAC...) stays with the adapter,
which knows its library (tlhub-audio uses torchcodec). numpy is imported at call time.
"""

from __future__ import annotations

import io
import wave
from pathlib import Path
from typing import Any


def wav_bytes(array: Any, sampling_rate: int) -> bytes:
    """The bytes of a 16-bit PCM mono WAV file holding ``array`` (floats in [-1, 1]; several
    channels are averaged)."""
    import numpy as np

    data = np.asarray(array, dtype=np.float32)
    if data.ndim > 1:  # (channels, samples) or (samples, channels): the shorter axis is channels
        data = data.mean(axis=0 if data.shape[0] < data.shape[1] else 1)
    pcm = (np.clip(data, -1.0, 1.0) * 32767.0).round().astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(int(sampling_rate))
        f.writeframes(pcm.tobytes())
    return buffer.getvalue()


def write_wav(path: str | Path, array: Any, sampling_rate: int) -> Path:
    """Write ``array`` as a 16-bit PCM mono WAV file at ``path`` (parent folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(wav_bytes(array, sampling_rate))
    return path


class CropRandom:
    """Random numbers for training-time crops that are the same run to run.

    Made when the collate is made, it draws its seed from torch's generator, which the trainer
    seeds with the run's ``seed``; in a DataLoader worker process it re-seeds from that seed and
    the worker's own (``torch.initial_seed()``, derived by the DataLoader from its seeded
    generator), so workers do not repeat each other. ``CropRandom()()`` is a numpy ``Generator``.
    """

    def __init__(self) -> None:
        import os

        import numpy as np
        import torch

        self._seed = int(torch.randint(0, 2**62, (1,)).item())
        self._pid = os.getpid()
        self._rng = np.random.default_rng(self._seed)

    def __call__(self):
        import os

        if os.getpid() != self._pid:  # a forked worker: its own stream, still reproducible
            import numpy as np
            import torch

            self._pid, self._rng = os.getpid(), np.random.default_rng([self._seed, torch.initial_seed()])
        return self._rng


def crop(array, length: int, rng=None):
    """``array`` cut to ``length`` samples: a random window when ``rng`` (a numpy Generator, e.g.
    from :class:`CropRandom`) is given, else the first ``length`` samples."""
    if len(array) <= length:
        return array
    start = int(rng.integers(0, len(array) - length + 1)) if rng is not None else 0
    return array[start : start + length]
