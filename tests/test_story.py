"""Story → film: the story syntax, the song's beat grid, scene planning on bar lines, and a real
three-scene render (CLIP searches, the latent engines, the encoder) checked frame by frame."""

from __future__ import annotations

import re
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
import torch

from prompt_fixtures import DEFAULT_MODEL, need_open_clip, write_tiny_clip
from vjgan.cli import main as vjgan_main
from vjgan.errors import UserError
from vjgan.render.beatgrid import BeatGrid, fit_grid
from vjgan.render.story import StoryScene, captions_srt, parse_story, plan_story, split_prompts

# ---------------------------------------------------------------------------------------------
# the story file


def test_paragraphs_are_scenes_with_optional_lengths() -> None:
    text = """# my film
[8 bars] A yeti walks through the snow.

[12 s]
Under the ice, a tardigrade wakes.
It swims.

[1:30] A city of glass.
# a comment inside the story
A green sky.



Nothing but the sea
"""
    scenes = parse_story(text)
    assert [(s.length.value, s.length.unit) if s.length else None for s in scenes] == [
        (8.0, "bars"), (12.0, "s"), (90.0, "s"), None]
    assert scenes[1].text == "Under the ice, a tardigrade wakes. It swims."
    assert scenes[2].text == "A city of glass. A green sky."
    assert [s.line for s in scenes] == [2, 4, 8, 14]
    assert scenes[1].prompts == ("Under the ice, a tardigrade wakes. It swims.",)  # "It swims." is a fragment
    assert scenes[2].prompts == ("A city of glass.", "A green sky.")
    assert parse_story("[1 bar] one.")[0].length.value == 1.0


def test_sentences_are_prompts_and_fragments_join_their_neighbour() -> None:
    assert split_prompts("A yeti in the snow. A tardigrade under ice! Is it night?") == (
        "A yeti in the snow.", "A tardigrade under ice!", "Is it night?")
    assert split_prompts("Fire. A forest burns at night.") == ("Fire. A forest burns at night.",)
    assert split_prompts("a yeti tardigrade in the snow") == ("a yeti tardigrade in the snow",)


@pytest.mark.parametrize("text,message", [
    ("", "no scenes"),
    ("# only a comment\n\n", "no scenes"),
    ("A yeti.\n\n[8 bras] The sea.", "line 3: '[8 bras]' is not a scene length"),
    ("[0 bars] The sea.", "line 1: a scene must last longer than 0"),
    ("[4 bars]\n\nThe sea.", "line 1: a scene needs some words after its length"),
])
def test_bad_story_is_one_line_naming_the_place(text: str, message: str) -> None:
    with pytest.raises(UserError, match=re.escape(message)) as e:
        parse_story(text, "story.txt")
    assert "\n" not in str(e.value)


# ---------------------------------------------------------------------------------------------
# the beat grid and the plan


def test_grid_fits_the_predicted_beats_and_extends_to_the_top_of_the_song() -> None:
    rng = np.random.default_rng(0)
    period, first = 60 / 124, 0.137
    beats = first + period * np.arange(8, 60) + rng.normal(0, 0.004, 52)  # locked on after a few seconds
    beats = np.delete(beats, [10, 30])  # two beats the clock did not predict
    grid = fit_grid(beats)
    assert grid.period == pytest.approx(period, abs=2e-4)
    assert grid.first_beat == pytest.approx(first, abs=0.005)
    assert grid.bar == pytest.approx(4 * period, abs=1e-3)
    assert fit_grid(beats[:5]) is None  # too few beats: no steady tempo


def scene(length: tuple[float, str] | None = None, text: str = "x") -> StoryScene:
    from vjgan.render.story import SceneLength

    return StoryScene(text, (text,), SceneLength(*length) if length else None, 1)


GRID = BeatGrid(period=0.5, first_beat=0.25)  # bars of 2 s, lines at 0.25, 2.25, 4.25, …


def test_scenes_change_on_bar_lines_and_the_last_plays_to_the_end() -> None:
    plan = plan_story([scene((2, "bars")), scene((2.9, "s")), scene()], GRID, 20.0, fade_beats=1)  # 2.9 s ≈ 1 bar
    assert [(s.start, s.end) for s in plan.scenes] == [(0.0, 4.25), (4.25, 6.25), (6.25, 20.0)]
    assert [s.fade for s in plan.scenes] == [0.5, 0.5, 0.0]
    assert plan.left_out == 0


def test_scenes_without_length_share_the_bars_left() -> None:
    # 9 whole bars after the first line (0.25 … 18.25); 2 are taken, 7 shared by 3 scenes: 3, 2, 2.
    plan = plan_story([scene(), scene((2, "bars")), scene(), scene()], GRID, 19.0)
    assert [s.end for s in plan.scenes] == [6.25, 10.25, 14.25, 19.0]


def test_scenes_past_the_end_are_left_out_and_fades_fit_short_scenes() -> None:
    plan = plan_story([scene((1, "bars")), scene((1, "bars")), scene((1, "bars"))], GRID, 3.0, fade_beats=4)
    assert [(s.start, s.end) for s in plan.scenes] == [(0.0, 2.25), (2.25, 3.0)]
    assert plan.left_out == 1
    assert plan.scenes[0].fade == pytest.approx(0.375)  # half of the next scene (0.75 s)


def test_cross_fade_ends_on_the_bar_line() -> None:
    plan = plan_story([scene((2, "bars")), scene()], GRID, 10.0, fade_beats=2)
    assert plan.at(3.0) == (0, 0.0)
    assert plan.at(3.25) == (0, 0.0)  # the fade begins one second (two beats) before the line
    i, w = plan.at(3.75)
    assert i == 0 and w == pytest.approx(0.5)
    assert plan.at(4.25) == (1, 0.0)  # on the line the next scene is all there
    assert plan.at(99.0) == (1, 0.0)


def test_captions_are_subrip_in_the_videos_time() -> None:
    plan = plan_story([scene((1, "bars"), "A yeti walks through the snow at dawn and stops at a frozen lake."),
                       scene(None, "The sea.")], GRID, 7.5)
    # The first scene holds the pickup before the first bar line and one bar: 0 → 2.25 s.
    assert captions_srt(plan, 1.0, 7.5) == (
        "1\n00:00:00,000 --> 00:00:01,250\nA yeti walks through the snow at dawn and\nstops at a frozen lake.\n\n"
        "2\n00:00:01,250 --> 00:00:06,500\nThe sea.\n")
    assert captions_srt(plan, 3.0, 5.0) == "1\n00:00:00,000 --> 00:00:02,000\nThe sea.\n"  # a section


# ---------------------------------------------------------------------------------------------
# a film: three scenes on a 120 BPM song


RATE, BPM, SECONDS, FPS = 48000, 120.0, 8.0, 12
STORY = """[2 bars] Fire in a dark forest.

[1 bar] A frozen lake under the moon.

Green waves on a glass sea.
"""
PRESET = """
name = "story-test"
[motion]
max_speed = 20.0
smoothing_s = 0.02
wander = 0.0
[[routes]]
name = "kick_punch"
source = "onset.bass"
target = "expressiveness"
layers = "all"
gain = 0.3
release_s = 0.15
[display]
fit = "fill"
"""
SEARCH = ["--prompt-candidates", "8", "--prompt-rounds", "1", "--prompt-steps", "4", "--prompt-reseeds", "3"]


def kicks(seconds: float, rate: int = RATE) -> np.ndarray:
    """A kick (a 150→50 Hz sweep) on every beat from the top; stereo float32."""
    n = int(seconds * rate)
    x = np.zeros(n)
    beat = 60.0 / BPM
    for i in range(int(seconds / beat)):
        start, length = int(i * beat * rate), int(0.25 * rate)
        t = np.arange(length) / rate
        piece = 0.9 * np.sin(2 * np.pi * np.cumsum(50.0 + 100.0 * np.exp(-t * 30.0)) / rate) * np.exp(-t * 12.0)
        x[start : start + length] += piece[: max(0, n - start)]
    return np.stack([x, x], axis=1).astype(np.float32)


@pytest.fixture(scope="module")
def film(tmp_path_factory) -> dict[str, Path]:
    need_open_clip()
    root = tmp_path_factory.mktemp("story")
    weights, config = write_tiny_clip(root)
    sf.write(root / "song.wav", kicks(SECONDS), RATE)
    (root / "story.txt").write_text(STORY, encoding="utf-8")
    (root / "story-test.toml").write_text(PRESET, encoding="utf-8")
    out = root / "film.mp4"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VJGAN_CACHE_DIR", str(root / "cache"))
        assert vjgan_main(["render", str(root / "song.wav"), "--story", str(root / "story.txt"), "--out", str(out),
                           "--clip", str(weights), "--clip-arch", str(config), "--model", str(DEFAULT_MODEL),
                           "--preset", str(root / "story-test.toml"), "--fps", str(FPS), "--size", "64x64",
                           "--fade", "1", "--captions", "--no-gl", "--quiet", *SEARCH]) == 0
    return {"root": root, "out": out, "weights": weights, "config": config}


def scene_pictures(film: dict[str, Path]) -> np.ndarray:
    """Each scene's keyframe (from the prompt cache the render filled) as a 64² RGB picture."""
    from PIL import Image

    from vjgan.gan.load import load_generator
    from vjgan.motion.directions import model_hash
    from vjgan.prompt.cache import PromptCache
    from vjgan.prompt.clip import load_clip
    from vjgan.prompt.settings import SearchSettings

    G = load_generator(DEFAULT_MODEL)
    scorer = load_clip(film["weights"], film["config"])
    settings = SearchSettings(candidates=8, rounds=1, steps=4, reseeds=3)
    cache = PromptCache(film["root"] / "cache" / "prompts")
    pictures = []
    for s in parse_story(STORY):
        keyframe = cache.lookup(model_hash(G), scorer.identity, s.prompts[0], settings)
        assert keyframe is not None, s.prompts[0]
        with torch.no_grad():
            image = G.synthesis(torch.from_numpy(keyframe.ws)[None], noise_mode="const")[0]
        pixels = ((image.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
        pictures.append(np.asarray(Image.fromarray(pixels).resize((64, 64), Image.BILINEAR), dtype=np.float32))
    return np.stack(pictures)


def test_film_has_the_songs_length_and_soundtrack(film) -> None:
    with av.open(str(film["out"])) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert v.frames == SECONDS * FPS
        assert float(v.duration * v.time_base) == pytest.approx(SECONDS, abs=1e-3)
        assert float(a.duration * a.time_base) == pytest.approx(SECONDS, abs=1e-3)
        assert a.rate == RATE and a.layout.nb_channels == 2


def test_scenes_change_on_the_bar_lines(film) -> None:
    """Every frame is nearest to the keyframe picture of the scene the story puts there: the first
    two bars (4 s at 120 BPM), one bar, then the rest; each change completes on its bar line."""
    references = scene_pictures(film)
    with av.open(str(film["out"])) as c:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]).astype(np.float32)
    distance = ((frames[:, None] - references[None]) ** 2).mean(axis=(2, 3, 4))  # [frame, scene]
    nearest = distance.argmin(axis=1)
    times = np.arange(len(frames)) / FPS
    fade = 60.0 / BPM  # --fade 1 beat
    for boundary, before, after in ((4.0, 0, 1), (6.0, 1, 2)):
        assert np.all(nearest[(times < boundary - fade) & (times >= boundary - 2.0)] == before), nearest
        assert np.all(nearest[(times >= boundary - 0.02) & (times < boundary + 1.0)] == after), nearest
    # The pictures of different scenes are far apart compared with how much a scene moves.
    assert np.min(distance[np.arange(len(frames)), nearest]) < 0.5 * np.median(distance)


def test_captions_beside_the_film(film) -> None:
    srt = film["out"].with_suffix(".srt").read_text(encoding="utf-8")
    times = re.findall(r"(\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d)", srt)
    ends = [int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000 for *_, h, m, s, ms in times]
    assert ends == pytest.approx([4.0, 6.0, 8.0], abs=0.02)
    assert "Fire in a dark forest." in srt and "Green waves on a glass sea." in srt


def test_a_section_of_a_second_render_takes_every_keyframe_from_the_cache(film, capsys) -> None:
    # A section is that part of the whole film: the scenes before it drive the catch-up, so all
    # three scenes' keyframes are needed, and all come from the cache.
    root = film["root"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VJGAN_CACHE_DIR", str(root / "cache"))
        assert vjgan_main(["render", str(root / "song.wav"), "--story", str(root / "story.txt"),
                           "--out", str(root / "again.mp4"), "--clip", str(film["weights"]), "--clip-arch",
                           str(film["config"]), "--model", str(DEFAULT_MODEL), "--preset", str(root / "story-test.toml"),
                           "--fps", str(FPS), "--size", "64x64", "--start", "5", "--duration", "2", "--no-gl", "--quiet",
                           "--captions", *SEARCH]) == 0
    assert capsys.readouterr().err.count("from the cache") == 3
    assert (root / "again.srt").read_text(encoding="utf-8") == (
        "1\n00:00:00,000 --> 00:00:01,001\nA frozen lake under the moon.\n\n"
        "2\n00:00:01,001 --> 00:00:02,000\nGreen waves on a glass sea.\n")


@pytest.mark.parametrize("extra,message", [
    (["--story", "STORY"], "--story needs CLIP"),
    (["--captions"], "--captions shows a story's text: it needs --story"),
    (["--story", "BAD", "--clip", "c", "--clip-arch", "ViT-B-32"], "line 3: '[two bars]' is not a scene length"),
    (["--story", "STORY", "--clip", "c", "--clip-arch", "ViT-B-32", "--fade", "-1"], "--fade -1"),
])
def test_bad_story_options_are_one_line_before_any_work(extra, message, tmp_path, capsys) -> None:
    (tmp_path / "story.txt").write_text(STORY, encoding="utf-8")
    (tmp_path / "bad.txt").write_text("The sea.\n\n[two bars] Fire.\n", encoding="utf-8")
    sf.write(tmp_path / "song.wav", kicks(1.0), RATE)
    extra = [{"STORY": str(tmp_path / "story.txt"), "BAD": str(tmp_path / "bad.txt")}.get(a, a) for a in extra]
    # A model that does not exist: an error about the story proves nothing was loaded.
    code = vjgan_main(["render", str(tmp_path / "song.wav"), "--out", str(tmp_path / "film.mp4"),
                       "--model", str(tmp_path / "missing.safetensors"), "--quiet", *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "film.mp4").exists()
