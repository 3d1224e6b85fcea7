"""Keyframes found while the show plays: a photo projected into the model (the living portrait),
or words turned into a picture with CLIP (a prompt).

Both take seconds to minutes, so they run on a supervised background task while the previous
scene keeps playing; the operator sees the progress as an activity line ("PORTRAIT me.jpg · step
120/300 · loss 0.081"). A newer request cancels the one in progress. The result is a keyframe
file, and it comes back to the show as a command (`PlayKeyframe`) on the one command path: the
scene director builds the running preset around it and the picture cross-fades to it.

On CUDA the work runs on a low-priority stream of the generator's device, so the frame worker's
graphs go first; on a CPU it shares the cores with the show (the log says how long it took).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch

from ..control.commands import Command, PlayKeyframe
from ..engine.scene import Scene
from ..errors import UserError
from ..handover import LatestSlot
from ..paths import data_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PortraitSettings:
    steps: int = 300  # projection steps (500 gives a closer likeness; `vjgan project` for more control)
    align: str = "face"  # "face": FFHQ-style crop around the detected face; "none": the whole picture


class _Job:
    """One search: `run()` on the finder's thread returns the keyframe file."""

    kind = ""

    def __init__(self, label: str) -> None:
        self.label = label
        self._cancelled = threading.Event()
        self.progress = ""

    def cancel(self) -> None:
        self._cancelled.set()

    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def run(self) -> Path:  # pragma: no cover - overridden
        raise NotImplementedError


class PortraitJob(_Job):
    kind = "PORTRAIT"

    def __init__(self, image: str, scene: Scene, settings: PortraitSettings, model_hash: Callable[[], str]) -> None:
        super().__init__(Path(image).name)
        self.image = Path(image).expanduser()
        self.scene = scene
        self.settings = settings
        self._model_hash = model_hash
        self._job = None

    def cancel(self) -> None:
        super().cancel()
        if self._job is not None:
            self._job.cancel()

    def run(self) -> Path:
        from ..motion.keyframe_files import save_keyframes
        from ..portrait.align import align_face
        from ..portrait.images import fill_square, read_image, to_tensor
        from ..portrait.perceptual import choose_loss
        from ..portrait.project import ProjectionJob, ProjectionSettings

        G = self.scene.G
        digest = self._model_hash()
        picture = hashlib.sha256(self.image.read_bytes()).hexdigest()[:12] if self.image.is_file() else "missing"
        out = data_dir() / "portraits" / f"{self.image.stem}-{picture}-{digest[:12]}-{self.settings.steps}.npz"
        if out.is_file():
            log.info("portrait %s: projected before with this model (%s)", self.label, out)
            return out
        rgb = read_image(self.image)  # one line if it cannot be read
        res = G.img_resolution
        crop = align_face(rgb, res, source=self.label).image if self.settings.align == "face" else fill_square(rgb, res)
        loss = choose_loss("auto", self.scene.model_path if Path(self.scene.model_path).is_file() else None).loss
        device = next(G.parameters()).device

        def progress(p) -> None:
            self.progress = f"step {p.step}/{p.steps} · loss {p.loss:.3f}"

        self._job = ProjectionJob(G, to_tensor(crop)[None], ProjectionSettings(steps=self.settings.steps), device, loss,
                                  on_progress=progress)
        if self.cancelled():
            self._job.cancel()
        result = self._job.run()
        out.parent.mkdir(parents=True, exist_ok=True)
        save_keyframes(out, result.ws[0], digest, "projection", source=self.image.name, psnr=result.psnr[0],
                       ssim=result.ssim[0], steps=result.steps)
        log.info("portrait %s: projected in %.0f s (PSNR %.1f dB)", self.label, result.seconds, result.psnr[0])
        return out


class PromptJob(_Job):
    kind = "PROMPT"

    def __init__(self, text: str, scene: Scene, keyframes) -> None:
        super().__init__(repr(text))
        self.text = text
        self.scene = scene
        self.keyframes = keyframes  # vjgan.prompt.cache.PromptKeyframes

    def run(self) -> Path:
        def progress(p) -> None:
            score = "" if p.score != p.score else f" · score {p.score:.3f}"  # NaN until scored
            self.progress = f"{p.phase} {p.done}/{p.total}{score}"

        _, path = self.keyframes.find(self.scene.G, self.text, cancelled=self.cancelled, on_progress=progress)
        return path


class KeyframeFinder:
    """The supervised "finder" task and what the main loop asks of it."""

    def __init__(self, post: Callable[[Command], object], *, portrait: PortraitSettings = PortraitSettings(),
                 clip_file: Optional[str] = None, clip_arch: Optional[str] = None) -> None:
        self._post = post
        self.portrait = portrait
        self.clip_file, self.clip_arch = clip_file, clip_arch
        self._prompts = None  # PromptKeyframes, made on first use (loading CLIP takes seconds)
        self._requests: LatestSlot[_Job] = LatestSlot()
        self._current: Optional[_Job] = None
        self._wake = threading.Event()
        self._hashes: dict[int, str] = {}
        self._taken = 0  # the newest request taken (kept across restarts: a job that faulted is not retried)

    # --- main loop ---------------------------------------------------------------------------------------

    def portrait_of(self, image: str, scene: Scene) -> None:
        self._request(PortraitJob(image, scene, self.portrait, lambda: self._model_hash(scene.G)))

    def prompt(self, text: str, scene: Scene) -> None:
        if not text.strip():
            raise UserError("a prompt needs some words")
        if not (self.clip_file and self.clip_arch):
            raise UserError("prompts need CLIP: start the show with --clip FILE --clip-arch ARCH (docs/prompts.md)")
        self._request(PromptJob(text.strip(), scene, None))

    def _request(self, job: _Job) -> None:
        current = self._current
        if current is not None:
            current.cancel()  # the newer request wins
        self._requests.publish(job)
        self._wake.set()
        log.info("%s %s: searching in the background; the show plays on", job.kind.lower(), job.label)

    def status(self) -> Optional[str]:
        """The operator's activity line while a search runs."""
        job = self._current
        if job is None:
            return None
        return f"{job.kind} {job.label}" + (f" · {job.progress}" if job.progress else " · starting")

    def prompt_resolver(self):
        """Text → W+ for presets' prompt keyframes (None without CLIP): the same cache as typed prompts."""
        if not (self.clip_file and self.clip_arch):
            return None
        return lambda G, prompts, cancelled=lambda: False: self._prompt_keyframes()(G, prompts, cancelled)

    # --- the supervised task --------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        stream = _low_priority_stream()
        while not stop.is_set():
            job, seq = self._requests.read()
            if job is None or seq == self._taken:
                self._wake.wait(0.25)
                self._wake.clear()
                continue
            self._taken = seq
            self._current = job
            started = time.monotonic()
            try:
                if isinstance(job, PromptJob) and job.keyframes is None:
                    job.keyframes = self._prompt_keyframes()
                with torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext():
                    path = job.run()
            except UserError as e:
                log.warning("%s %s: %s", job.kind.lower(), job.label, e)
                continue
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception:
                if job.cancelled():
                    log.info("%s %s: superseded", job.kind.lower(), job.label)
                    continue
                raise  # a fault: the supervisor logs it and restarts the finder
            finally:
                self._current = None
            if job.cancelled():
                log.info("%s %s: superseded", job.kind.lower(), job.label)
                continue
            log.info("%s %s: ready after %.0f s", job.kind.lower(), job.label, time.monotonic() - started)
            self._post(PlayKeyframe(str(path), f"{job.kind.lower()} {job.label}", source="finder"))

    def load_clip(self) -> None:
        """Load CLIP now (at the show's start), so a missing extra, file or architecture is one
        line before anything plays rather than a surprise at the first prompt."""
        if self.clip_file or self.clip_arch:
            if not (self.clip_file and self.clip_arch):
                raise UserError("CLIP needs both --clip FILE and --clip-arch ARCH (docs/prompts.md)")
            self._prompt_keyframes()

    def _prompt_keyframes(self):
        if self._prompts is None:
            from ..prompt.cache import PromptKeyframes
            from ..prompt.clip import load_clip

            self._prompts = PromptKeyframes(load_clip(self.clip_file, self.clip_arch), log=log.info)
        return self._prompts

    def _model_hash(self, G) -> str:
        from ..motion.directions import model_hash

        key = id(G)
        if key not in self._hashes:
            self._hashes[key] = model_hash(G)
        return self._hashes[key]


def _low_priority_stream() -> Optional["torch.cuda.Stream"]:
    if not torch.cuda.is_available():
        return None
    low, _high = torch.cuda.Stream.priority_range()
    return torch.cuda.Stream(priority=low)
