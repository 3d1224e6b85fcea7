"""The one atomic-write helper: old or new content, never a torn mix; modes as the user expects."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from vjgan.atomic import atomic_output, atomic_write, remove_stale_temporaries


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_failed_write_keeps_old_content_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "state.toml"
    atomic_write(path, "old")
    with pytest.raises(RuntimeError):
        with atomic_output(path) as f:
            f.write(b"half of the new")
            raise RuntimeError("disk full, say")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.toml"]


def test_failed_rename_keeps_old_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.toml"
    atomic_write(path, "old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        atomic_write(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.toml"]


def test_new_file_follows_the_umask_and_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        fresh = atomic_write(tmp_path / "video.json", b"{}")
        assert _mode(fresh) == 0o644  # not mkstemp's 0600
        os.umask(0o002)
        assert _mode(atomic_write(tmp_path / "shared.json", b"{}")) == 0o664
        os.chmod(fresh, 0o640)
        atomic_write(fresh, b"{\"a\": 1}")
        assert _mode(fresh) == 0o640
        assert fresh.read_bytes() == b"{\"a\": 1}"
    finally:
        os.umask(old)


def test_missing_folder_is_an_error_unless_asked_to_make_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "typo" / "out.bin", b"x")
    assert not (tmp_path / "typo").exists()
    made = atomic_write(tmp_path / "state" / "running.toml", "x", make_folder=True)
    assert made.read_text() == "x"


def test_stale_temporaries_of_one_name_are_removed(tmp_path: Path) -> None:
    (tmp_path / ".running-state.toml.abc123.tmp").write_text("killed mid-write")
    (tmp_path / ".other.toml.abc123.tmp").write_text("not ours")
    (tmp_path / "running-state.toml").write_text("kept")
    assert remove_stale_temporaries(tmp_path, "running-state.toml") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.toml.abc123.tmp", "running-state.toml"]
