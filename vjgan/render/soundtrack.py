"""The audio that goes beside the rendered frames, at the encoder's sample rate.

Cut on the same frame grid as the video (`Timeline.sample`), so the soundtrack is exactly as long
as the picture and frame k's sound starts where frame k does. More than two channels keep the
first two (front left and right in WAV's channel order); a rate the codec does not take is
resampled with a polyphase filter (deterministic, no extra dependency).

The decoded file is read in place (a view, not a copy: an hour-long set is over a gigabyte of
samples), a chunk at a time as the encoder asks for it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from math import gcd

import numpy as np

from .timeline import Timeline


@dataclass(frozen=True)
class Soundtrack:
    source: np.ndarray  # float32 [frames, channels] at `rate` (a view of the decoded file where possible)
    rate: int
    timeline: Timeline  # the render's timeline at this rate

    @property
    def channels(self) -> int:
        return int(self.source.shape[1])

    @property
    def length(self) -> int:
        """Samples of soundtrack: exactly the rendered frames' duration."""
        return self.timeline.audio_samples

    def end_after(self, done: int) -> int:
        """Samples that belong to the first `done` rendered frames."""
        return self.timeline.audio_end_after(done)

    def read(self, pos: int, n: int) -> np.ndarray:
        """Samples [pos, pos + n) of the soundtrack as float32 [channels, n]; silence past the file's end."""
        start = self.timeline.audio_start + pos
        out = np.zeros((self.channels, n), dtype=np.float32)
        piece = self.source[start : start + n]
        out[:, : len(piece)] = piece.T
        # Keep the codec's input legal: a clipped file must not wrap around in the encoder.
        return np.clip(out, -1.0, 1.0, out=out)


def make_soundtrack(data: np.ndarray, source_rate: int, rate: int, channels: int, timeline: Timeline) -> Soundtrack:
    """data: float32 [frames, channels] at source_rate (as `vjgan.audio.sources.load_audio` gives)."""
    x = np.asarray(data, dtype=np.float32)
    if x.ndim == 1:
        x = x[:, None]
    if channels == 2:
        x = x[:, :2] if x.shape[1] >= 2 else np.repeat(x[:, :1], 2, axis=1)
    elif x.shape[1] != 1:
        x = x.mean(axis=1, keepdims=True)
    if rate != source_rate:
        from scipy.signal import resample_poly

        g = gcd(rate, source_rate)
        x = resample_poly(x, rate // g, source_rate // g, axis=0).astype(np.float32)
    return Soundtrack(x, rate, dataclasses.replace(timeline, rate=rate))
