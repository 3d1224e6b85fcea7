"""The live analyzer driven hop by hop over a file, on the file's clock.

The same `Analyzer` the capture thread runs, fed the file's samples one hop at a time (read from
the file as the render advances, never held whole) and stamped with the file's time instead of
the ADC clock, so a render reacts exactly as the live show would to the same music. Past the end
of the file it hears silence (marked disconnected), as the live show does when a file source
ends.

Onsets are one hop long (~10 ms) while a video frame lasts 33 ms, so a frame that read only the
newest snapshot would miss two kicks in three. As live, every hop updates the newest onset time
per band (`vjgan.live.onsets.OnsetTimes`, the tracker the live capture thread feeds), and the
latent engine and the display read those times.
"""

from __future__ import annotations

import numpy as np

from ..audio.analysis import Analyzer
from ..audio.config import AnalysisConfig
from ..audio.features import Features, rest_features
from ..audio.offline import SampleStream
from ..live.onsets import OnsetTimes


class FeatureFeed:
    """Advance with `features_until(hops)`; owned by one thread (the render loop)."""

    def __init__(self, stream: SampleStream, config: AnalysisConfig) -> None:
        self.analyzer = Analyzer(stream.rate, config)
        self.hop = self.analyzer.hop
        self.rate = stream.rate
        self.onsets = OnsetTimes()
        self._stream = stream
        self._done = 0  # hops analysed
        self._latest: Features = rest_features(self.analyzer.band_names, 0.0)

    @property
    def band_names(self) -> tuple[str, ...]:
        return self.analyzer.band_names

    @property
    def hops_done(self) -> int:
        return self._done

    def _next_hop(self) -> tuple[np.ndarray, bool]:
        """Samples of the next hop and whether they come from the file."""
        chunk = self._stream.read(self.hop)
        if len(chunk) == self.hop:
            return chunk, True
        padded = np.zeros(self.hop, dtype=np.float32)
        padded[: len(chunk)] = chunk
        return padded, len(chunk) > 0

    def features_until(self, hops: int) -> Features:
        """Analyse up to hop `hops` (counted from the start of the file); the newest snapshot."""
        while self._done < hops:
            samples, connected = self._next_hop()
            self._done += 1
            # The file's clock: hop i's newest sample is at i·hop/rate seconds.
            f = self.analyzer.process(samples, adc_time=self._done * self.hop / self.rate, connected=connected,
                                      bad_samples=self._stream.bad_samples)
            self.onsets.update(f)
            self._latest = f
        return self._latest
