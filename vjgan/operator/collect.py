"""Reads the running show into an `OperatorView`: the only place the HUD touches live objects.

Everything read here is a hand-over point that never blocks: the audio engine's newest
`Features`, the frame worker's newest `WorkerStats`, a parameter snapshot, the MIDI
controller's activity and mappings (all thread-safe). `ShowLike` names what is needed from
`vjgan.live.app.LiveShow`, so the operator can be driven by anything that has those parts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol, Sequence

from ..control.commands import ACTIONS
from ..logs import LOG_TAIL
from ..motion.params import ParamStore
from .view import ACTION, PARAM, AlarmLine, BandMeter, MidiView, OperatorView, RouteView, Row, mapping_text

# (knob position 0..1 or None, engaged) of an absolute control: MidiController.takeover_state
Takeover = Callable[[Any], tuple[Optional[float], bool]]

BEAT_FLASH = 0.15  # the beat light is on for this part of each beat
MAX_PRESET_ACTIONS = 9  # recall-preset rows offered for learning (pads 1-9, like the number keys)


class ShowLike(Protocol):
    """The parts of a live show the operator window reads and drives (LiveShow has them all)."""

    params: ParamStore
    audio: Any  # .latest() -> Features, .tap()
    worker: Any  # .stats: LatestSlot[WorkerStats]
    renderer: Any  # .output_texture, .size
    window: Any  # the OutputWindow
    midi: Any  # MidiController or None
    frames: Any  # LatestSlot[Frame]
    preset: Any  # vjgan.config.Preset
    presets: list[str]
    alarms: Any  # vjgan.alarms.AlarmBoard
    log: Callable[[str], None]

    def post(self, command: Any) -> None: ...


def _ema(previous: Optional[float], sample: float, alpha: float) -> float:
    return sample if previous is None else previous + alpha * (sample - previous)


@dataclass
class DisplayMeters:
    """Display rate and sound-to-screen latency, from every picture the output swaps.

    Fed at the output's rate (every RenderStats), read at the operator's; smoothed so the
    figures can be read while they move."""

    display_fps: Optional[float] = None
    latency_ms: Optional[float] = None
    _interval: Optional[float] = None
    _last_swap: Optional[float] = None

    def update(self, stats: Any) -> None:
        t_swap = getattr(stats, "t_swap", None)
        if t_swap is None:
            return
        if self._last_swap is not None:
            dt = t_swap - self._last_swap
            if 0.0 < dt < 1.0:  # a longer gap is a stall (a window drag), not a frame rate
                self._interval = _ema(self._interval, dt, 0.1)
                self.display_fps = 1.0 / self._interval
        self._last_swap = t_swap
        t_audio = getattr(stats, "t_audio", None)
        if t_audio is not None:
            latency = (t_swap - t_audio) * 1000.0
            if math.isfinite(latency) and latency >= 0.0:
                self.latency_ms = _ema(self.latency_ms, latency, 0.2)


def param_rows(params: ParamStore, mappings_for: Callable[[str], Sequence[Any]] = lambda name: (),
               takeover: Optional[Takeover] = None) -> list[Row]:
    """One row per parameter, in the order they were registered (show parameters first).

    `takeover(control)` gives (knob position, engaged) of an absolute control: a knob that has
    not picked its value up yet (after a preset recall) is shown where it stands."""
    values = params.snapshot()
    rows = []
    for spec in params.specs():
        mappings = mappings_for(spec.name)
        rows.append(Row(spec.name, PARAM, "", float(values.get(spec.name, spec.default)), spec.minimum,
                        spec.maximum, spec.toggle, mapping_text(mappings), _pickup(mappings, takeover),
                        spec.group, spec.default, spec.description))
    return rows


def _pickup(mappings: Sequence[Any], takeover: Optional[Takeover]) -> Optional[float]:
    if takeover is None:
        return None
    for m in mappings:
        if getattr(m, "is_absolute", False) and getattr(m, "takeover", "") != "jump":
            position, engaged = takeover(m.control)
            if position is not None and not engaged:
                return float(position)
    return None


def action_rows(midi: Any, presets: Sequence[str]) -> list[Row]:
    """The show's actions (from its one vocabulary), each learnable onto a pad; a preset recall per
    preset (up to 9). They fire with or without a MIDI controller."""
    mappings_for = _mappings_lookup(midi)
    rows = []
    for spec in sorted(ACTIONS.values(), key=lambda s: s.name):
        if spec.argument:
            if spec.name != "recall-preset":
                continue  # no way to know which arguments make sense
            for i, name in enumerate(presets[:MAX_PRESET_ACTIONS], start=1):
                target = f"{spec.name}:{i}"
                rows.append(Row(target, ACTION, f"{target} ({name})", mapping=mapping_text(mappings_for(target)),
                                group="actions", description=f"recall preset {i}: {name}"))
        else:
            rows.append(Row(spec.name, ACTION, "", mapping=mapping_text(mappings_for(spec.name)), group="actions",
                            description=spec.description))
    return rows


def _mappings_lookup(midi: Any) -> Callable[[str], Sequence[Any]]:
    if midi is None:
        return lambda name: ()
    fn = getattr(midi, "mappings_for", None)
    if callable(fn):
        return fn
    mappings = tuple(getattr(midi, "mappings", ()) or ())
    return lambda name: tuple(m for m in mappings if getattr(m, "target", None) == name)


def all_rows(show: ShowLike) -> list[Row]:
    midi = show.midi
    takeover = getattr(midi, "takeover_state", None) if midi is not None else None
    return (param_rows(show.params, _mappings_lookup(midi), takeover if callable(takeover) else None)
            + action_rows(midi, list(show.presets)))


def midi_view(midi: Any, now: float) -> MidiView:
    if midi is None:
        return MidiView(enabled=False)
    inputs: tuple[str, ...] = ()
    ports = getattr(midi, "connected_ports", None)
    if callable(ports):
        inputs = tuple(ports().get("inputs", ()))
    count, age, text = 0, None, ""
    activity = getattr(midi, "activity", None)
    if callable(activity):
        a = activity()
        count = a.count
        if a.last_time is not None:
            age = max(0.0, now - a.last_time)
            text = describe_message(a.last_message)
    bpm, running = None, False
    clock = getattr(midi, "clock_state", None)
    if callable(clock):
        c = clock()
        if c.receiving or c.running:
            bpm, running = c.bpm, c.running
    pending = getattr(midi, "learning", None)
    return MidiView(True, inputs, count, age, text, bpm, running, getattr(pending, "target", None))


def describe_message(data: Sequence[int]) -> str:
    """A raw MIDI message in words (the words of `vjgan midi monitor`)."""
    if not data:
        return ""
    from ..control.messages import decode, describe

    try:
        return " ".join(describe(decode(list(data))).split())
    except Exception:
        return " ".join(f"{b:02X}" for b in data)


def collect_view(show: ShowLike, meters: DisplayMeters, now: float, *, selected: Optional[str] = None,
                 rows: Optional[Sequence[Row]] = None, message: str = "",
                 message_is_error: bool = False) -> OperatorView:
    """Everything the operator window and the output HUD show, read once."""
    features = show.audio.latest() if show.audio is not None else None
    stats = show.worker.stats.latest() if show.worker is not None else None
    values = show.params.snapshot()
    renderer = show.renderer
    output_size = tuple(renderer.size) if renderer is not None else (16, 9)
    window = show.window
    bands: tuple[BandMeter, ...] = ()
    bpm, source, phase, flash, loudness, connected, gated = None, "none", 0.0, False, 0.0, True, False
    if features is not None:
        bands = tuple(BandMeter(n, float(v)) for n, v in zip(features.band_names, features.bands))
        bpm = features.bpm if features.bpm > 0 else None
        source = features.tempo_source
        phase = features.phase_at(now)
        flash = features.beat_period > 0 and phase < BEAT_FLASH
        loudness, connected, gated = float(features.loudness), bool(features.connected), bool(features.gated)
    return OperatorView(
        preset=getattr(show.preset, "name", ""),
        presets=tuple(show.presets),
        blackout=values.get("blackout", 0.0) >= 0.5,
        freeze=values.get("freeze", 0.0) >= 0.5,
        output_fullscreen=bool(window.fullscreen) if window is not None and getattr(window, "handle", None) else False,
        output_size=(int(output_size[0]), int(output_size[1])),
        display_fps=meters.display_fps,
        generation_fps=stats.fps if stats is not None and stats.fps > 0 else None,
        generation_ms=stats.generation_ms if stats is not None else None,
        latent_ms=stats.latent_ms if stats is not None else None,
        resolution=stats.resolution if stats is not None else None,
        budget_step=stats.budget_step if stats is not None else None,
        # A held picture is as old as the freeze: a sound-to-screen figure would mean nothing.
        latency_ms=None if values.get("freeze", 0.0) >= 0.5 else meters.latency_ms,
        bpm=bpm, tempo_source=source, beat_phase=phase, beat_flash=flash,
        bands=bands, loudness=loudness, audio_connected=connected, gated=gated,
        midi=midi_view(show.midi, now),
        rows=tuple(rows if rows is not None else all_rows(show)),
        selected=selected, message=message, message_is_error=message_is_error,
        alarms=alarm_lines(getattr(show, "alarms", None)),
        rig=rig_lines(getattr(show, "rig", None)) + finder_lines(getattr(show, "finder", None)),
        prompts_available=getattr(getattr(show, "finder", None), "clip_file", None) is not None,
        user_presets=_USER_PRESETS.of(tuple(show.presets)),
        model=_model_playing(show),
        routes=tuple(RouteView(r.name, r.source, r.target, r.layers, r.direction)
                     for r in getattr(getattr(show.preset, "motion", None), "routes", ())),
        route_sources=route_sources(getattr(show.preset, "audio", None)),
        log=tuple((line.level, line.text) for line in LOG_TAIL.snapshot()[0][-LOG_LINES:]),
    )


def rig_lines(rig: Any) -> tuple[str, ...]:
    return tuple(rig.status_lines()) if rig is not None else ()


def finder_lines(finder: Any) -> tuple[str, ...]:
    """The background keyframe search's line while one runs ("PROMPT 'a yeti' · optimise 40/184")."""
    line = finder.status() if finder is not None else None
    return (line,) if line else ()


LOG_LINES = 200  # the log pane's lines (the whole file is in the data folder)


def alarm_lines(board: Any) -> tuple[AlarmLine, ...]:
    return tuple(AlarmLine(a.key, a.line()) for a in board.shown()) if board is not None else ()


def route_sources(audio: Any) -> tuple[str, ...]:
    """What a route can listen to with these analysis settings (docs/routes.md)."""
    bands = [b.name for b in getattr(audio, "bands", ())]
    return tuple([f"band.{b}" for b in bands] + [f"onset.{b}" for b in bands] + ["beat", "beat.sin", "loudness"])


def _model_playing(show: ShowLike) -> str:
    scene = getattr(show.worker, "scene", None) if show.worker is not None else None
    return str(getattr(scene, "model_path", "") or getattr(show, "model_override", None) or "")


class _UserPresetNames:
    """Which of the listed presets are the user's own, read from the folder only when the list changes."""

    def __init__(self) -> None:
        self._key: Optional[tuple[str, tuple[str, ...]]] = None
        self._names: frozenset[str] = frozenset()

    def of(self, presets: tuple[str, ...]) -> frozenset[str]:
        from ..config import user_presets_dir

        folder = user_presets_dir()
        if (str(folder), presets) != self._key:
            own = {p.stem for p in folder.glob("*.toml")} if folder.is_dir() else set()
            self._key, self._names = (str(folder), presets), frozenset(n for n in presets if n in own)
        return self._names


_USER_PRESETS = _UserPresetNames()
