"""`vjgan prompt`: CLIP loading (safe, offline, one-line refusals), the search, its cache, the CLI.

A real open_clip CLIP (tiny, random weights, saved to a file as a user's would be) scores real
pictures of vjgan's default model. Random CLIP weights know no words, but they are a fixed
function of text and picture all the same: the search must raise that function for its own text,
repeat exactly for a seed, and keep what it reports honest.
"""

from __future__ import annotations

import io
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from prompt_fixtures import DEFAULT_MODEL, need_open_clip, write_tiny_clip
from vjgan.cli import main as vjgan_main
from vjgan.errors import UserError

HOSTILE = Path(__file__).parent / "data" / "conformance" / "hostile"
PROMPTS = ("a yeti tardigrade in the snow", "a red sunset over the sea")


@pytest.fixture(scope="module")
def clip_files(tmp_path_factory) -> tuple[Path, Path]:
    need_open_clip()
    return write_tiny_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch) -> None:
    # Latent statistics and found keyframes go to a folder of the test run's own.
    monkeypatch.setenv("VJGAN_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "prompt-cache"))


@pytest.fixture(scope="module")
def model():
    from vjgan.gan.load import load_generator

    return load_generator(DEFAULT_MODEL).eval()


@pytest.fixture(scope="module")
def space(model, tmp_path_factory):
    from vjgan.motion.directions import load_or_compute

    return load_or_compute(model, folder=tmp_path_factory.mktemp("space"))


@pytest.fixture(scope="module")
def scorer(clip_files):
    from vjgan.prompt.clip import load_clip

    return load_clip(*clip_files)


def small_settings(seed: int = 1):
    from vjgan.prompt.settings import SearchSettings

    return SearchSettings(candidates=16, rounds=2, steps=8, reseeds=7, crops=8, score_crops=8, seed=seed)


def rescore(search, ws: np.ndarray, text: str) -> float:
    """A keyframe's score for `text`, on the search's fixed crops, computed afresh."""
    from vjgan.prompt.crops import crop_views

    with torch.no_grad():
        pictures = search.G.synthesis(torch.from_numpy(ws)[None], noise_mode="const")
        views = crop_views(pictures, search._score_crops, search.scorer.image_size)
        return float((search.scorer.embed_pictures(views) @ search.scorer.embed_texts([text])[0]).mean())


# ---------------------------------------------------------------------------------------------
# the search


@pytest.fixture(scope="module")
def searched(model, scorer, space):
    """Each prompt searched once with seed 1, with every progress report kept."""
    from vjgan.prompt.search import PromptSearch

    found = {}
    for text in PROMPTS:
        reports = []
        search = PromptSearch(model, scorer, text, space, small_settings(), on_progress=reports.append)
        found[text] = (search, search.run(), reports)
    return found


def test_search_raises_the_score_and_reports_it_honestly(searched) -> None:
    for text, (search, keyframe, _) in searched.items():
        assert keyframe.score > keyframe.score_start + 0.01, (text, keyframe.score_start, keyframe.score)
        assert keyframe.ws.shape == (search.G.num_ws, search.G.w_dim) and keyframe.ws.dtype == np.float32
        # The reported score is the keyframe's own, measured again from its latent.
        assert rescore(search, keyframe.ws, text) == pytest.approx(keyframe.score, abs=1e-5)


def test_each_keyframe_matches_its_own_text_better_than_the_others(searched) -> None:
    (a, (search_a, kf_a, _)), (b, (search_b, kf_b, _)) = searched.items()
    assert rescore(search_a, kf_a.ws, a) > rescore(search_a, kf_b.ws, a)
    assert rescore(search_b, kf_b.ws, b) > rescore(search_b, kf_a.ws, b)


def test_keyframe_stays_in_the_models_good_region(searched, space) -> None:
    for _, keyframe, _ in searched.values():
        distance = np.linalg.norm(keyframe.ws - space.w_avg, axis=1)
        assert distance.max() <= space.radius * (1 + 1e-4)


def test_search_repeats_exactly_for_a_seed_and_differs_for_another(searched, model, scorer, space) -> None:
    from vjgan.prompt.search import PromptSearch

    text = PROMPTS[0]
    _, first, _ = searched[text]
    again = PromptSearch(model, scorer, text, space, small_settings(seed=1)).run()
    np.testing.assert_array_equal(again.ws, first.ws)
    assert (again.score_start, again.score) == (first.score_start, first.score)
    other = PromptSearch(model, scorer, text, space, small_settings(seed=2)).run()
    assert not np.array_equal(other.ws, first.ws)


def test_progress_reports_every_step_with_a_rising_score(searched) -> None:
    search, keyframe, reports = searched[PROMPTS[0]]
    total = search.settings.work
    assert [r.done for r in reports] == list(range(1, total + 1)) + [total]
    assert all(r.total == total for r in reports)
    assert reports[-1].phase == "done" and reports[-1].score == keyframe.score
    scored = [r.score for r in reports if not math.isnan(r.score)]
    assert scored == sorted(scored)  # the best so far never falls
    assert {r.phase for r in reports} == {"sample", "optimise", "re-seed", "done"}
    assert [r.round for r in reports if r.phase == "optimise"][:1] == [1] and reports[-1].round == 2


def test_a_search_can_be_cancelled_between_steps(model, scorer, space) -> None:
    from vjgan.prompt.search import PromptSearch, SearchCancelled

    search = PromptSearch(model, scorer, PROMPTS[0], space, small_settings())
    for _ in range(3):
        assert search.step()
    search.cancel()
    assert not search.step()
    assert search.progress.done == 3 and search.cancelled and not search.finished
    with pytest.raises(SearchCancelled):
        search.result()


# ---------------------------------------------------------------------------------------------
# the cache


def test_cache_gives_back_exactly_what_was_found(model, scorer, space, tmp_path) -> None:
    from vjgan.prompt.cache import PromptCache, find_keyframe

    cache = PromptCache(tmp_path / "prompts")
    settings = small_settings(seed=3)
    assert cache.lookup("0" * 32, scorer.identity, "fire", settings) is None
    found, cached = find_keyframe(model, scorer, "fire", space, settings, cache=cache)
    assert not cached
    again, cached = find_keyframe(model, scorer, "  fire\n", space, settings, cache=cache)
    assert cached
    np.testing.assert_array_equal(again.ws, found.ws)
    assert (again.score, again.score_start, again.clip) == (found.score, found.score_start, found.clip)
    # Another seed is another search.
    _, cached = find_keyframe(model, scorer, "fire", space, small_settings(seed=4), cache=cache)
    assert not cached
    # A damaged entry is removed and searched again, never trusted.
    entry = cache.path_for(found.model_hash, scorer.identity, "fire", settings)
    entry.write_bytes(b"damaged")
    assert cache.lookup(found.model_hash, scorer.identity, "fire", settings) is None
    assert not entry.exists()


# ---------------------------------------------------------------------------------------------
# the command


def test_cli_writes_one_keyframe_file_per_text(clip_files, tmp_path, capsys) -> None:
    from vjgan.gan.load import load_generator
    from vjgan.motion.directions import model_hash
    from vjgan.motion.keyframe_files import load_keyframes

    weights, config = clip_files
    args = ["prompt", *PROMPTS, "--clip", str(weights), "--clip-arch", str(config), "--out", str(tmp_path / "k.npz"),
            "--candidates", "8", "--rounds", "1", "--steps", "4", "--reseeds", "3", "--seed", "5", "--preview", "--quiet"]
    assert vjgan_main(args) == 0
    G = load_generator(DEFAULT_MODEL)
    for i, text in enumerate(PROMPTS, start=1):
        kf = load_keyframes(tmp_path / f"k-{i}.npz", model_hash=model_hash(G), num_ws=G.num_ws, w_dim=G.w_dim)
        assert kf.kind == "prompt" and str(kf.extra["prompt"]) == text and int(kf.extra["seed"]) == 5
        assert float(kf.extra["score"]) > float(kf.extra["score_start"])
        with Image.open(tmp_path / f"k-{i}.png") as picture:
            assert picture.size == (G.img_resolution, G.img_resolution)
    first = capsys.readouterr().err
    assert first.count("wrote ") == 2 and "from the cache" not in first
    before = (tmp_path / "k-1.npz").read_bytes()
    assert vjgan_main(args) == 2  # the files exist
    assert "exists; pass --force" in capsys.readouterr().err
    assert vjgan_main([*args, "--force"]) == 0
    assert capsys.readouterr().err.count("from the cache") == 2
    with np.load(io.BytesIO(before)) as first_file:
        np.testing.assert_array_equal(load_keyframes(tmp_path / "k-1.npz").ws, first_file["ws"])


# ---------------------------------------------------------------------------------------------
# refusals: one line each


def run_cli(args: list[str], capsys) -> list[str]:
    assert vjgan_main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vjgan: "), err
    return err


def prompt_args(clip: Path, arch: str, tmp_path: Path) -> list[str]:
    return ["prompt", "fire", "--clip", str(clip), "--clip-arch", arch, "--out", str(tmp_path / "k.npz")]


def torchscript_archive(path: Path) -> Path:
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    return path


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit's deprecation: still how such archives are made
@pytest.mark.parametrize("case,expected", [
    ("missing", "No such file"),
    ("folder", "is a folder"),
    ("random bytes", "not a CLIP weights file"),
    ("os.system pickle", "refused, the file asks to call posix.system"),
    ("torchscript", "TorchScript archive"),
    ("not a state dict", "not a state dict of named tensors"),
])
def test_bad_checkpoint_is_one_line(case, expected, clip_files, tmp_path, capsys) -> None:
    _, config = clip_files
    files = {
        "missing": tmp_path / "nope.safetensors",
        "folder": tmp_path,
        "random bytes": tmp_path / "junk.pt",
        "os.system pickle": HOSTILE / "os_system_in_torch_zip.pt",
        "torchscript": tmp_path / "ViT-B-32.pt",
        "not a state dict": tmp_path / "list.pt",
    }
    (tmp_path / "junk.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    torchscript_archive(tmp_path / "ViT-B-32.pt")
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    out = tmp_path / "out"
    out.mkdir()
    (line,) = run_cli(prompt_args(files[case], str(config), out), capsys)
    assert expected in line and str(files[case].name) in line
    assert not list(out.iterdir())  # nothing written
    assert not list(Path.cwd().glob("PWNED_*"))


def test_wrong_or_unknown_architecture_is_one_line(clip_files, tmp_path, capsys) -> None:
    weights, _ = clip_files
    (line,) = run_cli(prompt_args(weights, "ViT-S-32", tmp_path), capsys)
    assert "does not fit --clip-arch ViT-S-32" in line and "of another shape" in line
    (line,) = run_cli(prompt_args(weights, "ViT-B-23", tmp_path), capsys)
    assert "not an open_clip architecture (did you mean" in line and "ViT-B-32" in line
    (line,) = run_cli(prompt_args(weights, "ViT-B-16-SigLIP", tmp_path), capsys)
    assert "Hugging Face hub" in line


@pytest.mark.parametrize("blocked", ["open_clip", "torchvision"])
def test_missing_extra_is_one_line(blocked: str, tmp_path: Path) -> None:
    # The extra is hidden from this process (as if not installed); no CLIP is needed to say so.
    code = (f"import sys; sys.modules[{blocked!r}] = None; from vjgan.cli import main; "
            f"sys.exit(main(['prompt', 'fire', '--clip', 'c.safetensors', '--clip-arch', 'ViT-B-32', '--out', 'k.npz']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'vjgan[prompt]'" in lines[0], proc.stderr
    assert not list(tmp_path.iterdir())


def test_settings_out_of_range_are_one_line(capsys, tmp_path) -> None:
    (line,) = run_cli(["prompt", "fire", "--clip", "c", "--clip-arch", "ViT-B-32", "--out", str(tmp_path / "k.npz"),
                       "--candidates", "0"], capsys)
    assert "candidates must be at least 1" in line
    with pytest.raises(UserError, match="a prompt must have some words"):
        from vjgan.prompt.search import PromptSearch

        PromptSearch(None, None, "   ", None)  # refused before anything is touched


def test_progress_line_says_round_and_score() -> None:
    from vjgan.prompt.progress import describe
    from vjgan.prompt.search import SearchProgress

    nan = float("nan")
    assert describe(SearchProgress("fire", "sample", 0, 4, 1, 99, nan, nan)) == "scoring random latents"
    assert describe(SearchProgress("fire", "sample", 0, 4, 3, 99, nan, 0.2)) == "scoring random latents  best 0.200"
    assert describe(SearchProgress("fire", "optimise", 2, 4, 50, 99, 0.231, 0.2844)) == \
        "round 2/4 optimise  score 0.284 (start 0.231)"
    assert describe(SearchProgress("fire", "done", 4, 4, 99, 99, 0.231, 0.31)) == "done  score 0.310 (start 0.231)"
