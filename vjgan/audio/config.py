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


@dataclass(frozen=True)
class Band:
    """One frequency band: its edges and how its envelope and onsets behave."""

    name: str
    low_hz: float
    high_hz: float
    attack_s: float = 0.005  # envelope rise time constant: fast, so hits land on time
    release_s: float = 0.15  # envelope fall time constant: slow enough that a 60 fps picture does not flicker
    refractory_s: float = 0.06  # no second onset in this band sooner than this (hats need < 60 ms for 16ths)
    onset_delta_db: float = 4.0  # flux must exceed its running median by this much to count as an onset

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise AudioConfigError(f"band name {self.name!r} must be a short word (letters, digits, - or _)")
        if not (0 < self.low_hz < self.high_hz):
            raise AudioConfigError(
                f"band {self.name!r}: edges must satisfy 0 < low_hz < high_hz (got {self.low_hz}, {self.high_hz})"
            )
        for name in ("attack_s", "release_s", "refractory_s"):
            value = getattr(self, name)
            if not (0 < value <= 30):
                raise AudioConfigError(f"band {self.name!r}: {name} must be in (0, 30] seconds (got {value})")
        if not (0 <= self.onset_delta_db <= 60):
            raise AudioConfigError(f"band {self.name!r}: onset_delta_db must be in [0, 60] (got {self.onset_delta_db})")

    @property
    def centre_hz(self) -> float:
        """Geometric centre: bands are log-spaced, so this is the middle as the ear hears it."""
        return math.sqrt(self.low_hz * self.high_hz)


# Log-spaced defaults (DESIGN.md). Kicks get a 100 ms refractory time, hats 45 ms so 16th notes
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

    bpm_min: float = 60.0
    bpm_max: float = 200.0
    min_history_s: float = 3.0  # first estimate after this much audio
    max_history_s: float = 8.0  # the autocorrelation window grows to this, then slides
    update_s: float = 0.25  # re-estimate period; the phase ramp runs every hop in between
    prior_bpm: float = 128.0  # octave errors are settled toward this tempo when the audio cannot tell
    prior_octaves: float = 1.2  # width of that preference (log-normal, in octaves)
    octave_tolerance: float = 0.9  # a pure pulse train at half/third the period within this of the best wins
    phase_gain: float = 0.35  # fraction of a measured phase error corrected per update (a soft PLL)
    tap_timeout_s: float = 2.0  # a pause longer than this starts a new tap sequence
    external_timeout_s: float = 0.5  # MIDI clock silent this long: fall back to the previous mode

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if not (20 <= self.bpm_min < self.bpm_max <= 400):
            raise AudioConfigError(
                f"tempo range must satisfy 20 <= bpm_min < bpm_max <= 400 (got {self.bpm_min}..{self.bpm_max})"
            )
        if self.bpm_max < 2 * self.bpm_min * 0.99:
            raise AudioConfigError("tempo range must span at least an octave (bpm_max >= 2 * bpm_min)")
        if not (1.0 <= self.min_history_s <= self.max_history_s <= 30.0):
            raise AudioConfigError("tempo history must satisfy 1 <= min_history_s <= max_history_s <= 30 seconds")
        if self.max_history_s < 2 * 60.0 / self.bpm_min:
            raise AudioConfigError("tempo max_history_s must hold at least two beats at bpm_min")
        if not (0.02 <= self.update_s <= 2.0):
            raise AudioConfigError(f"tempo update_s must be in [0.02, 2] seconds (got {self.update_s})")
        if not (self.bpm_min <= self.prior_bpm <= self.bpm_max) or not (0.2 <= self.prior_octaves <= 5.0):
            raise AudioConfigError("tempo prior_bpm must lie in the BPM range and prior_octaves in [0.2, 5]")
        if not (0.5 <= self.octave_tolerance <= 1.0):
            raise AudioConfigError("tempo octave_tolerance must be in [0.5, 1]")
        if not (0.0 < self.phase_gain <= 1.0):
            raise AudioConfigError("tempo phase_gain must be in (0, 1]")
        if self.tap_timeout_s <= 0 or self.external_timeout_s <= 0:
            raise AudioConfigError("tempo timeouts must be positive")


@dataclass(frozen=True)
class AnalysisConfig:
    """Everything the analyzer needs besides the sample rate."""

    bands: tuple[Band, ...] = DEFAULT_BANDS
    hop_s: float = 0.010  # ~10 ms hops at the device's native rate
    short_window_s: float = 0.021  # 1024 points at 48 kHz: onsets and the upper bands
    long_window_s: float = 0.085  # 4096 points at 48 kHz: enough bins for sub and bass
    input_gain_db: float = 0.0  # manual gain on top of the automatic gain
    gate_db: float = -60.0  # band level (dBFS) below which a band stays dark: hiss between songs
    gate_knee_db: float = 6.0  # the gate opens over this range instead of snapping
    mask_db: float = 24.0  # a band this far below a louder neighbour is leakage (or masked): dark
    agc_decay_s: float = 4.0  # the per-band peak follower decays with this time constant
    agc_floor_db: float = -40.0  # the AGC reference never drops below this: quiet signals stay dim
    loudness_attack_s: float = 0.01
    loudness_release_s: float = 0.3
    flux_lag_s: float = 0.02  # spectral flux compares with the spectrum this long ago (hop-independent)
    onset_median_s: float = 0.5  # adaptive threshold: running median over this much flux history
    tempo: TempoConfig = field(default_factory=TempoConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "bands", tuple(self.bands))
        self.validate()

    def validate(self) -> None:
        if not self.bands:
            raise AudioConfigError("at least one band is needed")
        names = [b.name for b in self.bands]
        if len(set(names)) != len(names):
            raise AudioConfigError(f"band names must be unique (got {names})")
        for band in self.bands:
            band.validate()
        if not (0.002 <= self.hop_s <= 0.05):
            raise AudioConfigError(f"hop_s must be in [0.002, 0.05] seconds (got {self.hop_s})")
        if not (0.005 <= self.short_window_s <= self.long_window_s <= 0.5):
            raise AudioConfigError("windows must satisfy 0.005 <= short_window_s <= long_window_s <= 0.5 seconds")
        if not (-120 <= self.gate_db <= 0):
            raise AudioConfigError(f"gate_db must be in [-120, 0] dBFS (got {self.gate_db})")
        if not (self.gate_db < self.agc_floor_db <= 0):
            raise AudioConfigError("agc_floor_db must lie between gate_db and 0 dBFS")
        if not (-60 <= self.input_gain_db <= 60):
            raise AudioConfigError(f"input_gain_db must be in [-60, 60] dB (got {self.input_gain_db})")
        positive = ("gate_knee_db", "mask_db", "agc_decay_s", "loudness_attack_s", "loudness_release_s",
                    "flux_lag_s", "onset_median_s")
        for name in positive:
            if not getattr(self, name) > 0:
                raise AudioConfigError(f"{name} must be positive (got {getattr(self, name)})")
        self.tempo.validate()

    def band_names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.bands)

    def with_gain(self, input_gain_db: float) -> "AnalysisConfig":
        return replace(self, input_gain_db=input_gain_db)

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
                kwargs[key] = _number(value, key)
        return cls(**kwargs)


def _as_list(value: Any, what: str) -> list:
    if not isinstance(value, (list, tuple)):
        raise AudioConfigError(f"{what} must be a list")
    return list(value)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AudioConfigError(f"{what} must be a number (got {value!r})")
    if not math.isfinite(value):
        raise AudioConfigError(f"{what} must be finite (got {value!r})")
    return float(value)


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
    kwargs = {k: (v if k == "name" else _number(v, f"{what}.{k}")) for k, v in value.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field is missing
        raise AudioConfigError(f"{what}: {exc}") from None


def window_samples(rate: int, seconds: float) -> int:
    """The power of two nearest to `seconds` of audio (FFT sizes stay fast at any rate)."""
    return int(2 ** max(6, round(math.log2(rate * seconds))))


def hop_samples(rate: int, hop_s: float) -> int:
    """round(rate * hop_s): 480 at 48 kHz, 441 at 44.1 kHz for the default 10 ms."""
    return max(16, int(round(rate * hop_s)))
