"""Per-user folders (cache, data, config) in each platform's conventional place."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir, user_config_dir, user_data_dir

APP = "vjgan"


def _override(env: str) -> Path | None:
    # Tests and portable installs point vjgan elsewhere without touching the user's folders.
    value = os.environ.get(env)
    return Path(value) if value else None


def cache_dir() -> Path:
    return _override("VJGAN_CACHE_DIR") or Path(user_cache_dir(APP, appauthor=False))


def data_dir() -> Path:
    """Autosaved running state and user-saved presets live here."""
    return _override("VJGAN_DATA_DIR") or Path(user_data_dir(APP, appauthor=False))


def config_dir() -> Path:
    return _override("VJGAN_CONFIG_DIR") or Path(user_config_dir(APP, appauthor=False))
