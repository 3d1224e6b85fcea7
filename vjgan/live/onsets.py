"""Onset times seen by every analysis hop, for consumers that run at the frame rate; and a
signal that a new hop arrived, so the frame worker can start a frame on fresh sound.

Analysis runs at ~100 hops per second and frames at 60 or fewer, so an onset flag that lives for
one hop is missed by a reader that samples snapshots. The capture thread updates this tracker for
every snapshot (AudioEngine's on_features hook) and publishes an immutable mapping band → ADC time
of its newest onset by one reference swap.
"""

from __future__ import annotations

import math
import threading
from types import MappingProxyType
from typing import Mapping


class OnsetTimes:
    def __init__(self) -> None:
        self._times: Mapping[str, float] = MappingProxyType({})
        self.newest = -math.inf  # newest onset in any band (the display's pulse)
        self.hop = threading.Event()  # set on every new snapshot: wakes a waiting frame worker

    def update(self, features) -> None:
        """Capture thread only."""
        self.hop.set()
        if not any(features.onsets):
            return
        times = dict(self._times)
        for name, hit in zip(features.band_names, features.onsets):
            if hit:
                times[name] = features.adc_time
        self._times = MappingProxyType(times)
        self.newest = features.adc_time

    def latest(self) -> Mapping[str, float]:
        return self._times
