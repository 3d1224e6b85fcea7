"""vjgan's own format, `vjgan convert` / `vjgan info`, and networks of any shape."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vjgan.gan.load import load_generator
from vjgan.gan.networks import Generator, GeneratorConfig
from vjgan.gan.own_format import save_generator

CONFORMANCE = Path(__file__).parent / "data" / "conformance"
SOURCES = [
    "sg2ada_64px.pkl", "sg2ada_64px_protocol3.pkl", "sg2ada_64px_tf.pkl", "sg2ada_64px_rosinality.pt",
    "sg2ada_64px_rosinality_train.pt", "sg2ada_cond_32px.pkl", "sg3repo_sg2_32px.pkl",
]


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vjgan", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"}, timeout=300)


def images(G: Generator, seed: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(2, G.z_dim, generator=g)
    c = torch.nn.functional.one_hot(torch.tensor([1, 7]), G.c_dim).float() if G.c_dim else None
    with torch.no_grad():
        return G.synthesis(G.mapping(z, c, truncation_psi=0.7), noise_mode="const")


@pytest.mark.parametrize("source", SOURCES)
def test_convert_then_info_gives_same_images(source: str, tmp_path: Path) -> None:
    out = tmp_path / "model.safetensors"
    proc = run_cli("convert", str(CONFORMANCE / source), str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.is_file() and "wrote" in proc.stdout
    original, converted = load_generator(CONFORMANCE / source), load_generator(out)
    assert converted.source_format == "vjgan"
    assert converted.config == original.config
    assert torch.equal(images(original), images(converted))

    info = run_cli("info", str(out))
    assert info.returncode == 0, info.stderr
    for word in ("format", "vjgan .safetensors", f"{original.img_resolution}x{original.img_resolution}",
                 "num_ws", str(original.num_ws), "parameters", "channels per block"):
        assert word in info.stdout


@pytest.mark.parametrize("source", SOURCES)
def test_info_on_every_source_format(source: str) -> None:
    proc = run_cli("info", str(CONFORMANCE / source))
    assert proc.returncode == 0, proc.stderr
    assert "format" in proc.stdout and "parameters" in proc.stdout


def test_convert_refuses_to_overwrite_and_bad_suffix(tmp_path: Path) -> None:
    out = tmp_path / "m.safetensors"
    out.write_bytes(b"keep me")
    proc = run_cli("convert", str(CONFORMANCE / "sg3repo_sg2_32px.pkl"), str(out))
    assert proc.returncode != 0 and "exists" in proc.stderr
    assert out.read_bytes() == b"keep me"
    proc = run_cli("convert", str(CONFORMANCE / "sg3repo_sg2_32px.pkl"), str(tmp_path / "m.pkl"))
    assert proc.returncode != 0 and ".safetensors" in proc.stderr


def test_save_is_atomic_when_writing_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    G = load_generator(CONFORMANCE / "sg3repo_sg2_32px.pkl")
    path = tmp_path / "m.safetensors"
    save_generator(G, path)
    before = path.read_bytes()

    import vjgan.gan.own_format as own

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(own, "save", broken_save)
    with pytest.raises(OSError):
        save_generator(G, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(z_dim=32, w_dim=48, img_resolution=16, mapping_layers=1, channel_base=256, channel_max=32),
        dict(z_dim=0, c_dim=5, w_dim=32, img_resolution=8, mapping_layers=3, channel_base=128, channel_max=16),
        dict(z_dim=16, w_dim=16, img_resolution=32, img_channels=1, mapping_layers=2, channel_base=512, channel_max=64, conv_clamp=256, num_fp16_res=2),
    ],
)
def test_any_configuration_round_trips(kwargs: dict, tmp_path: Path) -> None:
    torch.manual_seed(0)
    G = Generator(GeneratorConfig.from_channel_base(**kwargs)).eval()
    path = save_generator(G, tmp_path / "g.safetensors")
    H = load_generator(path)
    assert H.config == G.config
    z = torch.randn(3, G.z_dim) if G.z_dim else None
    c = torch.eye(G.c_dim)[:3] if G.c_dim else None
    with torch.no_grad():
        a = G.synthesis(G.mapping(z, c))
        b = H.synthesis(H.mapping(z, c))
    assert a.shape == (3, G.img_channels, G.img_resolution, G.img_resolution)
    assert torch.equal(a, b)


def test_convert_refuses_a_missing_output_folder(tmp_path: Path) -> None:
    out = tmp_path / "no" / "such" / "m.safetensors"
    proc = run_cli("convert", str(CONFORMANCE / "sg3repo_sg2_32px.pkl"), str(out))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [f"vjgan: output folder {out.parent} does not exist; create it first"]
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def tiny_tmpfs(tmp_path: Path):
    """A 64 kB tmpfs (a full disk for a model), where this machine lets us mount one (as root)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
                             capture_output=True).returncode == 0 if os.geteuid() == 0 else False
    if not mounted:
        pytest.skip("cannot mount a tmpfs here (needs root); the file-size-limit variant covers the class")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def _file_size_limit() -> None:
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))


@pytest.mark.parametrize("how", ["tmpfs", "file-size-limit"])
def test_convert_onto_a_full_disk_is_one_line(how: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    folder = request.getfixturevalue("tiny_tmpfs") if how == "tmpfs" else tmp_path
    out = folder / "m.safetensors"
    proc = subprocess.run([sys.executable, "-m", "vjgan", "convert", str(CONFORMANCE / "sg2ada_64px.pkl"), str(out)],
                          capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"}, timeout=300,
                          preexec_fn=_file_size_limit if how == "file-size-limit" else None)
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    reason = "No space left on device" if how == "tmpfs" else "File too large"
    assert proc.stderr.strip().splitlines() == [f"vjgan: cannot write {out}: {reason}"]
    assert list(folder.iterdir()) == []  # no partial model, no temporary file
