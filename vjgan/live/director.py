"""Scene changes, owned by one thread: preset and model changes are requests, committed whole.

The main loop asks (`request`), a background builder builds, and the main loop commits (`poll`):

    main loop:  request(preset, model) ──► newest request ──► builder task: build_scene(...)
                poll() ◄── the finished scene ◄──────────────────────────────┘
                  commit: the show's preset, parameters, shader chain and flash limits, and the
                  frame worker's scene, all in one turn of the main loop (`on_commit`)

- A newer request cancels an older build: the builder asks `cancelled()` between its stages, and
  a build that finishes after it was superseded is dropped (and its GPU memory freed), so
  pressing → five times builds at most two scenes and plays the last one.
- A failed build leaves the running preset wholly in place and says why in one line.
- Only the main loop commits, so nothing else ever sees a half-changed show, and the GL renderer
  is only touched on the thread that owns its context.
"""

from __future__ import annotations

import gc
import logging
import threading
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from ..config import Preset
from ..engine.scene import BuildCancelled, Scene, build_scene, model_path_for
from ..errors import UserError
from ..handover import LatestSlot

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SceneRequest:
    number: int  # grows with every request; only the newest may commit
    preset: Preset
    model: Optional[str]  # a model file overriding the preset's (the command line's --model, a model switch)
    reason: str = ""  # how the operator asked ("preset drop", "model faces.pkl"): said when it lands


@dataclass(frozen=True)
class BuildResult:
    request: SceneRequest
    scene: Optional[Scene]
    error: str = ""


class SceneDirector:
    def __init__(self, device: torch.device, on_commit: Callable[[SceneRequest, Scene], None],
                 build: Callable[..., Scene] = build_scene) -> None:
        self.device = device
        self._on_commit = on_commit
        self._build = build
        self._requests: LatestSlot[SceneRequest] = LatestSlot()
        self._results: LatestSlot[BuildResult] = LatestSlot()
        self._results_seen = 0
        self._wake = threading.Event()
        self._count = 0
        self.building: Optional[SceneRequest] = None  # for the HUD: "preparing drop"
        # Text → W+ for presets' prompt keyframes (CLIP, when the show has it), given the build's cancel.
        self.prompts: Optional[Callable[..., object]] = None
        # May a finished build commit now? (The rig's quantiser holds it for the next beat or bar.)
        self.commit_gate: Callable[[SceneRequest], bool] = lambda request: True

    # --- main loop ---------------------------------------------------------------------------------

    def request(self, preset: Preset, model: Optional[str] = None, reason: str = "") -> SceneRequest:
        """Ask for a scene; supersedes every earlier request that has not committed."""
        self._count += 1
        req = SceneRequest(self._count, preset, model, reason or f"preset {preset.name}")
        self._requests.publish(req)
        self._wake.set()
        log.info("%s: preparing", req.reason)
        return req

    @property
    def newest_request(self) -> int:
        return self._count

    def poll(self) -> Optional[SceneRequest]:
        """Commit a finished build if it is still the newest request (main loop, every turn)."""
        result, seq = self._results.read()
        if result is None or seq == self._results_seen:
            return None
        req = result.request
        if req.number == self._count and result.scene is not None and not self.commit_gate(req):
            return None  # held (a change quantised to the next beat or bar): asked again next turn
        self._results_seen = seq
        if req.number != self._count:
            return None  # superseded while it was built: dropped by the builder already
        if result.scene is None:
            log.warning("%s: %s; %s", req.reason, result.error, "the running scene keeps playing")
            return None
        self._on_commit(req, result.scene)
        log.info("%s: ready in %.1f s", req.reason, result.scene.built_in_s)
        return req

    # --- the builder task (supervised) ------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Build the newest request, again and again, until `stop`."""
        built = 0
        while not stop.is_set():
            req, seq = self._requests.read()
            if req is None or seq == built:
                self._wake.wait(0.2)
                self._wake.clear()
                continue
            built = seq
            self.building = req
            try:
                self._results.publish(self._build_one(req))
            finally:
                self.building = None

    def _build_one(self, req: SceneRequest) -> BuildResult:
        def superseded() -> bool:
            return self._count != req.number

        scene = None
        resolver = self.prompts
        extra = {"prompts": lambda G, texts: resolver(G, texts, superseded)} if resolver is not None else {}
        try:
            scene = self._build(model_path_for(req.preset, req.model), req.preset, self.device,
                                cancelled=superseded, log=lambda line: log.info("%s", line), **extra)
            if superseded():
                raise BuildCancelled()
            return BuildResult(req, scene)
        except BuildCancelled:
            scene = None
            return BuildResult(req, None, "superseded")
        except UserError as e:
            return BuildResult(req, None, str(e))
        except torch.cuda.OutOfMemoryError:
            return BuildResult(req, None, "not enough GPU memory for this model")
        except MemoryError:
            return BuildResult(req, None, "not enough memory for this model")
        except Exception as e:  # a bug in building: the traceback to the log, one line on screen
            if superseded():
                return BuildResult(req, None, "superseded")
            log.exception("building %s failed", req.reason)
            return BuildResult(req, None, f"could not prepare the scene ({type(e).__name__}: {e})")
        finally:
            if scene is None:
                _free_memory(self.device)


def _free_memory(device: torch.device) -> None:
    """A dropped or failed build leaves tensors behind in frames that are gone: collect them now."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()

