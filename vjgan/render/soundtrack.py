"""The audio that goes beside the rendered frames, at the encoder's sample rate.

Cut on the same frame grid as the video (`Timeline.sample`), so the soundtrack is exactly as long
as the picture and frame k's sound starts where frame k does. More than two channels keep the
first two (front left and right in WAV's channel order); a rate the codec does not take is
resampled with a polyphase filter (deterministic, no extra dependency).

The file is read a piece at a time, in order, as the encoder asks for it: an hour-long set is
over a gigabyte of samples and never has to be in memory. Resampling works piece by piece too,
with enough of the neighbouring input around each piece that the result is exactly that of
resampling the whole file at once.
"""

from __future__ import annotations

import dataclasses
from math import gcd
from typing import Protocol

import numpy as np
from scipy.signal import resample_poly

from .timeline import Timeline

PIECE_S = 1.0  # seconds of soundtrack made at a time


class FrameReader(Protocol):
    """Frames of a file in order (`vjgan.audio.files.AudioReader`)."""

    rate: int
    channels: int

    def read(self, n: int) -> np.ndarray: ...

    def skip(self, n: int) -> None: ...

    def close(self) -> None: ...


class Soundtrack:
    """`read(pos, n)` in increasing `pos`; owned by one thread (the encoder's)."""

    def __init__(self, reader: FrameReader, rate: int, channels: int, timeline: Timeline) -> None:
        """`rate` and `channels` are the encoder's; `timeline` is the render's."""
        self.rate = rate
        self.channels = channels
        self.timeline = timeline = dataclasses.replace(timeline, rate=rate)  # the same frames, at this rate
        self._reader = reader
        g = gcd(rate, reader.rate)
        self._up, self._down = rate // g, reader.rate // g
        # scipy's resample_poly filter reaches this far either side (in upsampled samples).
        self._reach = 10 * max(self._up, self._down)
        self._in = np.zeros((0, channels), dtype=np.float32)  # input frames [_in_start, _in_start + len)
        self._in_start = 0
        self._out = np.zeros((channels, 0), dtype=np.float32)  # output samples [_out_start, ...)
        self._out_start = timeline.audio_start
        self._piece = max(1, int(PIECE_S * rate))

    @property
    def length(self) -> int:
        """Samples of soundtrack: exactly the rendered frames' duration."""
        return self.timeline.audio_samples

    def end_after(self, done: int) -> int:
        """Samples that belong to the first `done` rendered frames."""
        return self.timeline.audio_end_after(done)

    def read(self, pos: int, n: int) -> np.ndarray:
        """Samples [pos, pos + n) of the soundtrack as float32 [channels, n]; silence past the file's end."""
        j0 = self.timeline.audio_start + pos
        if j0 < self._out_start:
            raise ValueError("the soundtrack is read in order")
        # Drop what was read before, then make pieces until [j0, j0 + n) is there.
        self._out = self._out[:, j0 - self._out_start :] if j0 - self._out_start < self._out.shape[1] else self._out[:, :0]
        self._out_start = j0
        while self._out.shape[1] < n:
            start = self._out_start + self._out.shape[1]
            self._out = np.concatenate([self._out, self._make(start, start + max(self._piece, n))], axis=1)
        out = self._out[:, :n].copy()
        # Keep the codec's input legal: a clipped file must not wrap around in the encoder.
        return np.clip(out, -1.0, 1.0, out=out)

    def close(self) -> None:
        self._reader.close()

    def _make(self, j0: int, j1: int) -> np.ndarray:
        """Output samples [j0, j1) as [channels, j1 - j0]."""
        up, down = self._up, self._down
        if up == down:
            return self._input(j0, j1).T
        # Output j sits at input j·down/up; the filter reaches `_reach` upsampled samples either
        # side. Starting the input piece at a multiple of `down` keeps output j on the same
        # filter phase as in a whole-file resample, so the pieces join seamlessly.
        s = ((j0 * down - self._reach) // up) // down * down
        e = -(-(j1 * down + self._reach) // up) + 1
        y = resample_poly(self._input(s, e), up, down, axis=0)
        i0 = j0 - s * up // down
        return np.ascontiguousarray(y[i0 : i0 + (j1 - j0)].T, dtype=np.float32)

    def _input(self, s: int, e: int) -> np.ndarray:
        """Input frames [s, e) in the soundtrack's channels (zeros before the start and past the end)."""
        if s > self._in_start + len(self._in):  # a jump ahead (the start of a section render)
            self._reader.skip(s - (self._in_start + len(self._in)))
            self._in = self._in[:0]
            self._in_start = s
        while self._in_start + len(self._in) < e:
            block = self._reader.read(max(e - self._in_start - len(self._in), 4096))
            if len(block) == 0:
                break
            self._in = np.concatenate([self._in, self._layout(block)])
        out = np.zeros((e - s, self.channels), dtype=np.float32)
        a, b = max(s, self._in_start), min(e, self._in_start + len(self._in))
        if b > a:
            out[a - s : b - s] = self._in[a - self._in_start : b - self._in_start]
        # Later pieces start at or after s: what lies before it is no longer needed.
        keep = max(0, s - self._in_start)
        self._in = self._in[keep:]
        self._in_start += keep
        return out

    def _layout(self, block: np.ndarray) -> np.ndarray:
        if self.channels == 2:
            return block[:, :2] if block.shape[1] >= 2 else np.repeat(block[:, :1], 2, axis=1)
        return block.mean(axis=1, keepdims=True) if block.shape[1] != 1 else block
