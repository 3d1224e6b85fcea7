"""The file's clock: which frames are rendered, which audio goes with them, what each frame hears.

Everything is integer or rational arithmetic, so frame k's time, the hops analysed before it and
the audio samples beside it never drift, whatever the frame rate (29.97 included) or length.

* Frame k (counted from the start of the file) is shown at t = k / fps.
* It reflects the analysis of every hop whose newest sample's time (its "ADC time" on the
  file's clock, i·hop / rate for hop i = 1, 2, …) is ≤ t: the same causality as the live show.
* The audio beside frame k runs from sample round(k·rate/fps) to round((k+1)·rate/fps), so the
  soundtrack and the picture have the same length and stay in sync over any duration.
* A render that starts at S begins at the frame nearest S. Analysis and motion always run from
  the start of the file, so a section render is exactly the matching part of a full render.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from ..errors import UserError


@dataclass(frozen=True)
class Timeline:
    fps: Fraction
    rate: int  # audio sample rate of the file (analysis runs at this rate)
    hop: int  # analysis hop in samples
    first_frame: int  # frame index (from the start of the file) of the first rendered frame
    frames: int  # number of rendered frames

    @property
    def end_frame(self) -> int:
        return self.first_frame + self.frames

    @property
    def duration_s(self) -> float:
        return self.frames / float(self.fps)

    @property
    def frame_period(self) -> float:
        return 1.0 / float(self.fps)

    def time(self, k: int) -> float:
        """Display time of frame k on the file's clock (seconds from the start of the file)."""
        return float(Fraction(k) / self.fps)

    def hops_before(self, k: int) -> int:
        """Hops whose ADC time (i·hop/rate) is at or before frame k's time."""
        return math.floor(Fraction(k * self.rate) / (self.fps * self.hop))

    def sample(self, k: int) -> int:
        """The audio sample at which frame k begins (rounded to the nearest sample)."""
        return round(Fraction(k * self.rate) / self.fps)

    @property
    def audio_start(self) -> int:
        return self.sample(self.first_frame)

    @property
    def audio_samples(self) -> int:
        """Samples of soundtrack for the rendered frames (exactly the video's length)."""
        return self.sample(self.end_frame) - self.audio_start

    def audio_end_after(self, done: int) -> int:
        """Soundtrack samples (from audio_start) that belong to the first `done` rendered frames."""
        return self.sample(self.first_frame + done) - self.audio_start


def plan_timeline(fps: Fraction, rate: int, hop: int, total_samples: int, start_s: float = 0.0,
                  duration_s: float | None = None) -> Timeline:
    """The frames to render for a file of `total_samples` at `rate`, from `start_s` for `duration_s`.

    Without a duration (or with one past the end) the render runs to the end of the file; its
    last frame may outlast the audio by less than one frame period, which the soundtrack fills
    with silence.
    """
    length_s = total_samples / rate
    first = round(Fraction(start_s).limit_denominator(1_000_000) * fps)
    if first / fps >= Fraction(total_samples, rate):
        raise UserError(f"--start {start_s:g} s is at or past the end of the audio ({length_s:.2f} s)")
    end = math.ceil(Fraction(total_samples, rate) * fps)  # the end of the file
    if duration_s is not None:
        # A duration past the end of the file stops at the end, as ffmpeg's -t does.
        end = min(end, first + max(1, round(Fraction(duration_s).limit_denominator(1_000_000) * fps)))
    return Timeline(fps=fps, rate=rate, hop=hop, first_frame=first, frames=end - first)
