"""Keyframes found while the show plays: a photo (the living portrait) or words (a prompt) become
the picture, in the background, through the one command path; presets may hold prompts."""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from prompt_fixtures import need_open_clip, write_tiny_clip
from waiting import wait_until
from xvfb_support import xvfb  # noqa: F401  (a fixture)

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "tests" / "data" / "conformance" / "sg2ada_64px.pkl"


wait_until = functools.partial(wait_until, timeout=120.0, interval=0.05)  # a show starts in seconds, not milliseconds


def test_a_preset_with_prompts_needs_clip_and_takes_its_resolver(tmp_path, monkeypatch) -> None:
    from vjgan.config import load_preset
    from vjgan.engine.scene import build_scene
    from vjgan.errors import UserError
    from vjgan.motion.latent_files import resolve_latents

    monkeypatch.setenv("VJGAN_CACHE_DIR", str(tmp_path))
    preset = load_preset("default")
    kf = dataclasses.replace(preset.motion.keyframes, prompts=("a yeti", "the sea at night"))
    preset = dataclasses.replace(preset, motion=dataclasses.replace(preset.motion, keyframes=kf))
    with pytest.raises(UserError, match="text prompt.*--clip FILE --clip-arch ARCH"):
        build_scene(MODEL, preset, torch.device("cpu"))
    asked = []

    def resolver(G, prompts):
        asked.append(tuple(prompts))
        return np.zeros((len(prompts), G.num_ws, G.w_dim), np.float32)

    scene = build_scene(MODEL, preset, torch.device("cpu"), prompts=resolver)
    seeds = len(preset.motion.keyframes.seeds)
    assert asked == [("a yeti", "the sea at night")] and len(scene.engine.keyframes) == seeds + 2
    G = scene.G
    assert len(resolve_latents(G, preset.motion, None, resolver).keyframes) == seeds + 2


def _picture_from_the_model(path: Path) -> None:
    """A picture the test network can make (so a short projection finds it)."""
    from PIL import Image

    from vjgan.gan.load import load_generator

    G = load_generator(MODEL)
    with torch.no_grad():
        img = G(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(3)), None, truncation_psi=0.5)
    rgb = ((img[0].permute(1, 2, 0).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    Image.fromarray(rgb).resize((128, 128)).save(path)


def _play(show, script) -> dict:
    seen: dict = {}

    def play() -> None:
        try:
            script(seen)
        finally:
            show.stop()

    player = threading.Thread(target=play, daemon=True)
    player.start()
    assert show.run() == 0
    player.join(10)
    return seen


@pytest.mark.slow
def test_a_portrait_typed_in_a_running_show_becomes_the_picture_while_frames_keep_coming(xvfb, tmp_path,  # noqa: F811
                                                                                           monkeypatch) -> None:
    from vjgan.control.commands import Portrait
    from vjgan.live.app import LiveOptions, LiveShow

    monkeypatch.setenv("VJGAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VJGAN_DATA_DIR", str(tmp_path / "data"))
    photo = tmp_path / "me.png"
    _picture_from_the_model(photo)
    show = LiveShow(LiveOptions(model=str(MODEL), demo=True, duration=300, window_size=(320, 180), fresh=True,
                                midi=("no-such-controller",), portrait_steps=20, portrait_align="none"))

    def script(seen: dict) -> None:
        wait_until(lambda: show.worker is not None and show.frames.latest() is not None, what="the first frame")
        show.post(Portrait(str(tmp_path / "nobody.jpg"), source="test"))  # a bad picture: one line, nothing else
        show.post(Portrait(str(photo), source="test"))
        wait_until(lambda: show.finder.status() is not None, what="the search to start")
        seen["line"] = show.finder.status()
        before = show.frames.latest().index
        wait_until(lambda: show.worker.scene.preset.motion.keyframes.files, what="the portrait's scene")
        seen["frames_during"] = show.frames.latest().index - before
        seen["files"] = show.worker.scene.preset.motion.keyframes.files
        seen["alarms"] = [a.key for a in show.alarms.shown()]

    seen = _play(show, script)
    assert seen["line"].startswith("PORTRAIT me.png")
    (keyframe,) = seen["files"]
    assert Path(keyframe).is_file() and Path(keyframe).parent.name == "portraits"
    assert seen["frames_during"] > 0  # the show played on while it searched
    assert "frames-stalled" not in seen["alarms"]


@pytest.mark.slow
def test_a_prompt_in_a_running_show_switches_the_scene_without_a_frame_gap(xvfb, tmp_path, monkeypatch) -> None:  # noqa: F811
    need_open_clip()
    from vjgan.control.commands import Prompt
    from vjgan.live import finder
    from vjgan.live.app import LiveOptions, LiveShow
    from vjgan.prompt.settings import SearchSettings

    monkeypatch.setenv("VJGAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VJGAN_DATA_DIR", str(tmp_path / "data"))
    weights, config = write_tiny_clip(tmp_path)
    small = SearchSettings(candidates=8, rounds=1, steps=4, reseeds=3, crops=4, score_crops=4, seed=1)
    real = finder.KeyframeFinder._prompt_keyframes

    def small_search(self):  # a short search: the mechanics, not the picture's quality
        keyframes = real(self)
        keyframes.settings = small
        return keyframes

    monkeypatch.setattr(finder.KeyframeFinder, "_prompt_keyframes", small_search)
    show = LiveShow(LiveOptions(model=str(MODEL), demo=True, duration=300, window_size=(320, 180), fresh=True,
                                midi=("no-such-controller",), clip=str(weights), clip_arch=str(config)))

    def script(seen: dict) -> None:
        wait_until(lambda: show.worker is not None and show.frames.latest() is not None, what="the first frame")
        stamps: list[float] = []
        watching = threading.Event()

        def watch() -> None:
            last = None
            while not watching.is_set():
                frame = show.frames.latest()
                if frame is not None and frame.index != last:
                    stamps.append(frame.t_ready)
                    last = frame.index
                time.sleep(0.005)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        show.post(Prompt("a yeti tardigrade in the snow", source="test"))
        wait_until(lambda: show.worker.scene.preset.motion.keyframes.files, what="the prompt's scene")
        time.sleep(1.5)  # the cross-fade
        watching.set()
        watcher.join(2)
        seen["gaps"] = np.diff(stamps)
        seen["alarms"] = [a.key for a in show.alarms.shown()]
        seen["files"] = show.worker.scene.preset.motion.keyframes.files

    seen = _play(show, script)
    (keyframe,) = seen["files"]
    assert Path(keyframe).is_file()
    from vjgan.motion.keyframe_files import load_keyframes

    assert load_keyframes(keyframe).kind == "prompt"
    assert "frames-stalled" not in seen["alarms"]  # the watchdog never saw the picture stop
    assert len(seen["gaps"]) > 10
