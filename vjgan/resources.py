"""Find the data folders (shaders, presets, models) shipped with vjgan.

In an installed wheel they live inside the package (the build force-includes them there); in a
source checkout they stand at the repository's top level, beside the package. Both are reached
through importlib.resources first so zip-safe installs keep working.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

DATA_FOLDERS = ("shaders", "presets", "models")


def data_dir(name: str) -> Path:
    """Return the folder `name` (one of DATA_FOLDERS) as a real path on disk."""
    if name not in DATA_FOLDERS:
        raise ValueError(f"unknown data folder {name!r}; expected one of {DATA_FOLDERS}")
    packaged = resources.files("vjgan").joinpath(name)
    if packaged.is_dir():
        return Path(str(packaged))
    checkout = Path(str(resources.files("vjgan"))).parent / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(
        f"vjgan's {name}/ folder is missing from this installation (looked in {packaged} and {checkout})"
    )


def data_file(folder: str, filename: str) -> Path:
    """Return the path of one shipped file, e.g. data_file('presets', 'default.toml')."""
    path = data_dir(folder) / filename
    if not path.is_file():
        raise FileNotFoundError(f"vjgan ships no {folder}/{filename}")
    return path
