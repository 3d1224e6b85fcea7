"""Hostile model files: nothing executes, every refusal is one line naming the file and the reason."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vjgan.gan.load import ModelLoadError, load_generator

HOSTILE = Path(__file__).parent / "data" / "conformance" / "hostile"

REFUSED = {
    "empty.pkl": "empty",
    "exec_on_load.pkl": "builtins.exec",
    "os_system.pkl": "system",
    "os_system_in_torch_zip.pt": "system",
    "truncated.pkl": "truncated",
    "random_bytes.pkl": "not a model file",
    "not_a_model.pkl": "no generator",
    "wrong_shape_rosinality.pt": "shape",
}


@pytest.fixture
def in_tmp_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_every_hostile_file_is_covered() -> None:
    present = {p.name for p in HOSTILE.iterdir()}
    assert present == set(REFUSED) | {"module_src_payload.pkl"}


@pytest.mark.parametrize("name,reason", sorted(REFUSED.items()))
def test_hostile_file_is_refused_without_executing(name: str, reason: str, in_tmp_cwd: Path) -> None:
    with pytest.raises(ModelLoadError) as info:
        load_generator(HOSTILE / name)
    message = str(info.value)
    assert "\n" not in message
    assert name in message
    assert reason in message
    assert not list(in_tmp_cwd.glob("PWNED_*"))


def test_module_src_payload_loads_without_running_its_source(in_tmp_cwd: Path) -> None:
    G = load_generator(HOSTILE / "module_src_payload.pkl")
    assert G.img_resolution == 64
    assert not list(in_tmp_cwd.glob("PWNED_*"))
    assert not list(Path(__file__).parent.glob("PWNED_*"))


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_cli_refusal_is_one_line_with_nonzero_exit(name: str, in_tmp_cwd: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "vjgan", "info", str(HOSTILE / name)],
        capture_output=True, text=True, cwd=in_tmp_cwd, env={**os.environ, "PYTHONWARNINGS": "ignore"}, timeout=120,
    )
    assert proc.returncode != 0
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("vjgan: cannot load model") and name in lines[0]
    assert "Traceback" not in proc.stderr
    assert not list(in_tmp_cwd.glob("PWNED_*"))


def test_missing_and_folder_paths(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no such file"):
        load_generator(tmp_path / "nope.pkl")
    with pytest.raises(ModelLoadError, match="folder"):
        load_generator(tmp_path)


def test_stylegan3_or_unknown_safetensors_is_refused(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(2)}, str(path))
    with pytest.raises(ModelLoadError, match="not a vjgan model"):
        load_generator(path)
