"""Carrying out the commands, on the show's main loop: the one place the show is steered.

`Steering.apply(command)` runs each typed command from the queue (keys, operator, MIDI, OSC,
Link all post the same ones). A command that cannot be carried out (no such preset, a model file
that is not there) becomes one log line and the show goes on; nothing here raises into the loop.
Scene changes are only requested here: the director builds them in the background and commits
them whole (`director.py`).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..config import Preset, load_preset, preset_from_dict
from ..control.apply import apply_param_command
from ..control.commands import (AcknowledgeAlarm, Blackout, Command, EditRoute, Freeze, NewKeyframe, NudgeParam,
                                PlayKeyframe, Portrait, Prompt, Quit, RecallPreset, RemoveRoute, RenamePreset,
                                ResetParam, SavePreset, SetParam, StepPreset, SwitchModel, Tap, ToggleFullscreen,
                                ToggleParam)
from ..errors import UserError
from ..logs import RateLimitedLog
from ..motion.config import with_keyframe_files
from .saving import TRANSIENT_PARAMS

if TYPE_CHECKING:
    from .app import LiveShow

log = logging.getLogger(__name__)


class Steering:
    def __init__(self, show: "LiveShow") -> None:
        self.show = show
        self._say = RateLimitedLog(log, 2.0)
        self._handlers: dict[type, Callable[..., None]] = {
            SetParam: self._param, NudgeParam: self._param, ToggleParam: self._param, ResetParam: self._param,
            Tap: self._tap, RecallPreset: self._recall, StepPreset: self._step,
            SavePreset: self._save, RenamePreset: self._rename, EditRoute: self._edit_route,
            RemoveRoute: self._remove_route, SwitchModel: self._switch_model, Blackout: self._blackout,
            Freeze: self._freeze, NewKeyframe: self._new_keyframe, AcknowledgeAlarm: self._acknowledge,
            ToggleFullscreen: self._fullscreen, Quit: self._quit,
            Portrait: self._portrait, Prompt: self._prompt, PlayKeyframe: self._play_keyframe,
        }

    def handles(self, kind: type) -> bool:
        return kind in self._handlers

    def add_handler(self, kind: type, handler: Callable[[Command], None]) -> None:
        """Commands an optional part brings (recording, Link, prompts) are carried out here too."""
        self._handlers[kind] = handler

    def apply(self, command: Command) -> None:
        handler = self._handlers.get(type(command))
        if handler is None:
            self._say(f"unhandled:{type(command).__name__}", f"no handler for {type(command).__name__}")
            return
        try:
            handler(command)
        except UserError as e:
            self._say(f"user:{type(command).__name__}:{e}", str(e))
        except Exception:  # a command's own bug: logged with its traceback, the show goes on
            log.exception("%s from %s failed", type(command).__name__, command.source or "somewhere")

    # --- parameters -----------------------------------------------------------------------------------

    def _param(self, c: Command) -> None:
        apply_param_command(self.show.params, c)  # SetParam.origin reaches MIDI pick-up

    def _blackout(self, c: Blackout) -> None:
        self._switch("blackout", c.on)

    def _freeze(self, c: Freeze) -> None:
        self._switch("freeze", c.on)

    def _switch(self, name: str, on: bool | None) -> None:
        if on is None:
            self.show.params.toggle(name)
        else:
            self.show.params.set(name, 1.0 if on else 0.0)

    # --- the show ---------------------------------------------------------------------------------------

    def _tap(self, c: Tap) -> None:
        self.show.audio.tap(c.t)  # the event's own time, not when the loop got to it

    def _recall(self, c: RecallPreset) -> None:
        which = c.which.strip()
        presets = self.show.presets
        if which.isdigit():
            n = int(which)
            if not 1 <= n <= len(presets):
                raise UserError(f"no preset number {n} (there {'is' if len(presets) == 1 else 'are'} {len(presets)})")
            which = presets[n - 1]
        self.show.request_preset(load_preset(which))

    def _step(self, c: StepPreset) -> None:
        presets = self.show.presets
        if not presets:
            return
        # From the newest requested preset, so pressing → twice quickly goes two presets on.
        current = self.show.target_preset_name
        i = presets.index(current) if current in presets else (-1 if c.direction > 0 else 0)
        self.show.request_preset(load_preset(presets[(i + c.direction) % len(presets)]))

    def _save(self, c: SavePreset) -> None:
        self.show.save_preset(c.name)

    def _rename(self, c: RenamePreset) -> None:
        self.show.saver.rename(c.old, c.new)

    def _edit_route(self, c: EditRoute) -> None:
        self.show.request_preset(with_route(self.show.preset, c.name, dict(c.changes), self._running_values()))

    def _remove_route(self, c: RemoveRoute) -> None:
        self.show.request_preset(without_route(self.show.preset, c.name, self._running_values()))

    def _running_values(self) -> dict[str, float]:
        return {k: v for k, v in self.show.params.snapshot().values.items() if k not in TRANSIENT_PARAMS}

    def _switch_model(self, c: SwitchModel) -> None:
        path = Path(c.path).expanduser()
        if not path.is_file():
            raise UserError(f"model {path}: no such file")
        self.show.request_model(str(path))

    def _portrait(self, c: Portrait) -> None:
        if not Path(c.path).expanduser().is_file():
            raise UserError(f"portrait {c.path}: no such picture")
        self.show.finder.portrait_of(c.path, self.show.worker.scene)

    def _prompt(self, c: Prompt) -> None:
        self.show.finder.prompt(c.text, self.show.worker.scene)

    def _play_keyframe(self, c: PlayKeyframe) -> None:
        """The running preset around one keyframe (a projected face, a prompt's picture), kept as a
        file so saving the preset keeps it too."""
        preset = self.show.preset
        motion = with_keyframe_files(preset.motion, [c.path])
        self.show.request_preset(dataclasses.replace(preset, motion=motion), reason=c.label or Path(c.path).stem)

    def _new_keyframe(self, c: NewKeyframe) -> None:
        self.show.worker.request_keyframe()

    def _acknowledge(self, c: AcknowledgeAlarm) -> None:
        self.show.alarms.acknowledge(c.key)

    def _fullscreen(self, c: ToggleFullscreen) -> None:
        self.show.window.toggle_fullscreen()

    def _quit(self, c: Quit) -> None:
        self.show.stop()


# --- routes: a route change is a preset change ------------------------------------------------------------

ROUTE_FIELDS = ("source", "target", "layers", "direction", "gain", "gain_max", "release_s", "smoothing_s")


def with_route(preset: Preset, name: str, changes: dict, values: dict[str, float]) -> Preset:
    """`preset` with route `name` changed by `changes` (added if it has none of that name), playing
    the running `values`; checked as a preset file is (UserError naming the route and the key)."""
    unknown = [k for k in changes if k not in ROUTE_FIELDS]
    if unknown:
        raise UserError(f"route {name}: {unknown[0]!r} is not a route setting ({', '.join(ROUTE_FIELDS)})")
    routes = preset.motion.to_dict()["routes"]
    for route in routes:
        if route["name"] == name:
            route.update(changes)
            break
    else:
        if "source" not in changes or "target" not in changes:
            raise UserError(f"route {name}: a new route needs a source and a target")
        routes.append({"name": name, **changes})
    return _checked(preset, routes, values)


def without_route(preset: Preset, name: str, values: dict[str, float]) -> Preset:
    routes = [r for r in preset.motion.to_dict()["routes"] if r["name"] != name]
    if len(routes) == len(preset.motion.routes):
        raise UserError(f"preset {preset.name} has no route named {name!r}")
    return _checked(preset, routes, values)


def _checked(preset: Preset, routes: list[dict], values: dict[str, float]) -> Preset:
    # Through the preset reader, so an edit is held to exactly what a preset file is held to
    # (a source naming a band the preset does not analyse, a snap without an onset...).
    data = preset.to_dict()
    data["routes"] = routes
    kept = {f"gain.{r['name']}" for r in routes}
    data["params"] = {k: v for k, v in values.items() if not k.startswith("gain.") or k in kept}
    return preset_from_dict(data, f"{preset.name} (edited)", preset.path)
