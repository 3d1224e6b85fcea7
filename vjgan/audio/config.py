"""Typed settings for the audio analysis (bands, gain control, onsets, tempo).

Presets carry these as plain tables; `AnalysisConfig.from_dict` builds and validates them so a
bad preset is reported as one line naming the field, never as a traceback from deep in the DSP.
All durations are in seconds and all levels in dB, so nothing depends on the sample rate or the
hop size: the analyzer derives sample counts and smoothing coefficients from them at run time.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Mapping

from vjgan.audio.errors import AudioConfigError
from vjgan.validation import Number, check_fields, number

SECONDS = Number(0.0005, 30.0, unit="s")  # time constants and refractory times (from well below one hop)
FREQUENCY = Number(1.0, 96_000.0, unit="Hz")
BPM = Number(20.0, 400.0, unit="BPM")
GAIN_DB = Number(-60.0, 60.0, unit="dB")  # also `vjgan live --gain`
MAX_BANDS = 32


@dataclass(frozen=True)
class Band:
    """One frequency band: its edges and how its envelope and onsets behave."""

    name: str
    low_hz: float = number(FREQUENCY)
    high_hz: float = number(FREQUENCY)
    attack_s: float = number(SECONDS, 0.005)  # envelope rise time constant: fast, so hits land on time
    # envelope fall time constant: slow enough that a 60 fps picture does not flicker
    release_s: float = number(SECONDS, 0.15)
    # no second onset in this band sooner than this (hats need < 60 ms for 16ths)
    refractory_s: float = number(SECONDS, 0.06)
    # flux must exceed its running median by this much to count as an onset
    onset_delta_db: float = number(Number(0.0, 60.0, unit="dB"), 4.0)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise AudioConfigError(f"band name {self.name!r} must be a short word (letters, digits, - or _)")
        check_fields(self, f"band {self.name!r}", AudioConfigError)
        if not self.low_hz < self.high_hz:
            raise AudioConfigError(
                f"band {self.name!r}: edges must satisfy 0 < low_hz < high_hz (got {self.low_hz:g}, {self.high_hz:g})"
            )

    @property
    def centre_hz(self) -> float:
        """Geometric centre: bands are log-spaced, so this is the middle as the ear hears it."""
        return math.sqrt(self.low_hz * self.high_hz)


# Log-spaced defaults (docs/architecture.md, "Audio analysis"). Kicks get a 100 ms refractory time, hats 45 ms so 16th notes
# survive up to ~165 BPM.
DEFAULT_BANDS: tuple[Band, ...] = (
    Band("sub", 20.0, 60.0, attack_s=0.008, release_s=0.25, refractory_s=0.10),
    Band("bass", 60.0, 250.0, attack_s=0.006, release_s=0.20, refractory_s=0.10),
    Band("lowmid", 250.0, 500.0, refractory_s=0.08),
    Band("mid", 500.0, 2000.0, refractory_s=0.06),
    Band("highmid", 2000.0, 6000.0, release_s=0.12, refractory_s=0.05),
    Band("high", 6000.0, 16000.0, release_s=0.10, refractory_s=0.045),
)


@dataclass(frozen=True)
class TempoConfig:
    """Tempo tracking: BPM range, how much onset history to use, how often to re-estimate."""

    bpm_min: float = number(BPM, 60.0)
    bpm_max: float = number(BPM, 200.0)
    min_history_s: float = number(Number(1.0, 30.0, unit="s"), 3.0)  # first estimate after this much audio
    # the autocorrelation window grows to this, then slides
    max_history_s: float = number(Number(1.0, 30.0, unit="s"), 8.0)
    # re-estimate period; the phase ramp runs every hop in between
    update_s: float = number(Number(0.02, 2.0, unit="s"), 0.25)
    prior_bpm: float = number(BPM, 128.0)  # octave errors are settled toward this tempo when the audio cannot tell
    prior_octaves: float = number(Number(0.2, 5.0), 1.2)  # width of that preference (log-normal, in octaves)
    # a pure pulse train at half/third the period within this of the best wins
    octave_tolerance: float = number(Number(0.5, 1.0), 0.9)
    # fraction of a measured phase error corrected per update (a soft PLL)
    phase_gain: float = number(Number(0.01, 1.0), 0.35)
    tap_timeout_s: float = number(Number(0.05, 60.0, unit="s"), 2.0)  # a longer pause starts new taps
    # MIDI clock silent this long: fall back to the previous mode
    external_timeout_s: float = number(Number(0.05, 60.0, unit="s"), 0.5)

    def __post_init__(self) -> None:
        check_fields(self, "tempo", AudioConfigError)
        if not (20 <= self.bpm_min < self.bpm_max <= 400):
            raise AudioConfigError(
                f"tempo range must satisfy 20 <= bpm_min < bpm_max <= 400 (got {self.bpm_min}..{self.bpm_max})"
            )
        if self.bpm_max < 2 * self.bpm_min * 0.99:
            raise AudioConfigError("tempo range must span at least an octave (bpm_max >= 2 * bpm_min)")
        if not self.min_history_s <= self.max_history_s:
            raise AudioConfigError("tempo history must satisfy 1 <= min_history_s <= max_history_s <= 30 seconds")
        if self.max_history_s < 2 * 60.0 / self.bpm_min:
            raise AudioConfigError("tempo max_history_s must hold at least two beats at bpm_min")
        if not (self.bpm_min <= self.prior_bpm <= self.bpm_max):
            raise AudioConfigError("tempo prior_bpm must lie in the BPM range")


@dataclass(frozen=True)
class AnalysisConfig:
    """Everything the analyzer needs besides the sample rate."""

    bands: tuple[Band, ...] = DEFAULT_BANDS
    hop_s: float = number(Number(0.002, 0.05, unit="s"), 0.010)  # ~10 ms hops at the device's native rate
    # 1024 points at 48 kHz: onsets and the upper bands
    short_window_s: float = number(Number(0.005, 0.5, unit="s"), 0.021)
    long_window_s: float = number(Number(0.005, 0.5, unit="s"), 0.085)  # 4096 points at 48 kHz: bins for sub and bass
    input_gain_db: float = number(GAIN_DB, 0.0)  # manual gain on top of the automatic gain
    # band level (dBFS) below which a band stays dark: hiss between songs
    gate_db: float = number(Number(-120.0, 0.0, unit="dBFS"), -60.0)
    gate_knee_db: float = number(Number(0.1, 60.0, unit="dB"), 6.0)  # the gate opens over this range
    # a band this far below a louder neighbour is leakage (or masked): dark
    mask_db: float = number(Number(0.1, 120.0, unit="dB"), 24.0)
    # the per-band peak follower decays with this time constant
    agc_decay_s: float = number(Number(0.01, 600.0, unit="s"), 4.0)
    # the AGC reference never drops below this: quiet signals stay dim
    agc_floor_db: float = number(Number(-120.0, 0.0, unit="dBFS"), -40.0)
    loudness_attack_s: float = number(SECONDS, 0.01)
    loudness_release_s: float = number(SECONDS, 0.3)
    # Both below set history lengths in hops (memory): hence their upper bounds.
    # spectral flux compares with the spectrum this long ago (hop-independent)
    flux_lag_s: float = number(Number(0.001, 0.5, unit="s"), 0.02)
    # adaptive threshold: running median over this much flux history
    onset_median_s: float = number(Number(0.01, 10.0, unit="s"), 0.5)
    tempo: TempoConfig = field(default_factory=TempoConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "bands", tuple(self.bands))
        check_fields(self, "", AudioConfigError)
        if not self.bands:
            raise AudioConfigError("at least one band is needed")
        if len(self.bands) > MAX_BANDS or not all(isinstance(b, Band) for b in self.bands):
            raise AudioConfigError(f"bands must be a list of at most {MAX_BANDS} bands")
        names = [b.name for b in self.bands]
        if len(set(names)) != len(names):
            raise AudioConfigError(f"band names must be unique (got {names})")
        if not self.short_window_s <= self.long_window_s:
            raise AudioConfigError("windows must satisfy 0.005 <= short_window_s <= long_window_s <= 0.5 seconds")
        if not self.gate_db < self.agc_floor_db:
            raise AudioConfigError("agc_floor_db must lie between gate_db and 0 dBFS")
        if not isinstance(self.tempo, TempoConfig):
            raise AudioConfigError("tempo must be a table of tempo settings")

    def band_names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.bands)

    def with_gain(self, input_gain_db: float) -> "AnalysisConfig":
        return replace(self, input_gain_db=input_gain_db)

    def with_hop(self, hop_s: float | None) -> "AnalysisConfig":
        """The same analysis at another hop (`vjgan live --hop-ms`); None keeps the preset's.
        Every time constant is in seconds, so only the latency and the cost per second change."""
        return self if hop_s is None else replace(self, hop_s=hop_s)

    # --- presets -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain tables and lists, ready for TOML."""
        d = asdict(self)
        d["bands"] = [asdict(b) for b in self.bands]
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "AnalysisConfig":
        """Build from a preset's table; unknown keys and wrong types are reported by name."""
        data = dict(data)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise AudioConfigError(f"unknown audio setting(s): {', '.join(unknown)}")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key == "bands":
                kwargs["bands"] = tuple(_band_from(b, i) for i, b in enumerate(_as_list(value, "bands")))
            elif key == "tempo":
                kwargs["tempo"] = _dataclass_from(TempoConfig, value, "tempo")
            else:
                kwargs[key] = value  # types and ranges: __post_init__ (vjgan.validation)
        return cls(**kwargs)


def _as_list(value: Any, what: str) -> list:
    if not isinstance(value, (list, tuple)):
        raise AudioConfigError(f"{what} must be a list")
    return list(value)


def _band_from(value: Any, index: int) -> Band:
    if not isinstance(value, Mapping):
        raise AudioConfigError(f"bands[{index}] must be a table with name, low_hz and high_hz")
    if "name" not in value or not isinstance(value["name"], str):
        raise AudioConfigError(f"bands[{index}] needs a name (a string)")
    return _dataclass_from(Band, value, f"band {value['name']!r}")


def _dataclass_from(cls: type, value: Any, what: str):
    if not isinstance(value, Mapping):
        raise AudioConfigError(f"{what} must be a table")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise AudioConfigError(f"{what}: unknown setting(s) {', '.join(unknown)}")
    try:
        return cls(**value)
    except TypeError as exc:  # a required field is missing
        raise AudioConfigError(f"{what}: {exc}") from None


def window_samples(rate: int, seconds: float) -> int:
    """The power of two nearest to `seconds` of audio (FFT sizes stay fast at any rate)."""
    return int(2 ** max(6, round(math.log2(rate * seconds))))


def hop_samples(rate: int, hop_s: float) -> int:
    """round(rate * hop_s): 480 at 48 kHz, 441 at 44.1 kHz for the default 10 ms."""
    return max(16, int(round(rate * hop_s)))
