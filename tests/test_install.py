"""A non-editable install (`pip install .` into a fresh virtual environment) carries the data folders."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_install_finds_shaders_presets_and_models(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    # System site-packages lend the heavy dependencies (torch); vjgan itself is installed into the
    # venv from a built wheel, which shadows any editable install of the checkout.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = venv / ("Scripts" if sys.platform == "win32" else "bin") / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--disable-pip-version-check", str(ROOT)],
                   check=True, cwd=tmp_path, timeout=600)
    script = (
        "import json, vjgan, vjgan.resources as r\n"
        "out = {'pkg': vjgan.__file__}\n"
        "for name in r.DATA_FOLDERS:\n"
        "    out[name] = sorted(p.name for p in r.data_dir(name).iterdir())\n"
        "print(json.dumps(out))\n"
    )
    # A PYTHONPATH pointing at a checkout would shadow the installed wheel we want to inspect.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([str(python), "-c", script], capture_output=True, text=True, cwd=tmp_path, check=True, env=env)
    import json

    found = json.loads(proc.stdout)
    assert str(venv) in found["pkg"], "the wheel, not the checkout, must be imported"
    for name in ("shaders", "presets", "models"):
        expected = sorted(p.name for p in (ROOT / name).iterdir() if p.is_file())
        assert expected, f"{name}/ is empty in the checkout"
        assert found[name] == expected, f"{name}/ differs in the installed wheel"
