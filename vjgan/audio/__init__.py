"""Live audio engine: capture, analysis (bands, gain control, onsets, tempo) and the beat clock.

The show starts an `AudioEngine` on a source from `open_source(...)` and reads `engine.latest()`
(an immutable `Features`) whenever it needs the newest state; see docs/audio.md.
"""

from vjgan.audio.analysis import Analyzer
from vjgan.audio.config import AnalysisConfig, Band, DEFAULT_BANDS, TempoConfig
from vjgan.audio.engine import AudioEngine, open_source
from vjgan.audio.features import Features, rest_features
from vjgan.audio.tempo import BeatClock, TempoTracker

__all__ = [
    "Analyzer",
    "AnalysisConfig",
    "AudioEngine",
    "Band",
    "BeatClock",
    "DEFAULT_BANDS",
    "Features",
    "TempoConfig",
    "TempoTracker",
    "open_source",
    "rest_features",
]
