"""Display: frames → textures → shader chain → the output window (or an offscreen target).

Importing this package is cheap: the frame worker imports `vjgan.display.frame` without pulling
in GL or glfw; the names below load their modules on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Frame": "frame",
    "DisplayInputs": "inputs",
    "OnsetLatch": "inputs",
    "EffectConfig": "effects",
    "EFFECTS": "effects",
    "validate_effect_chain": "effects",
    "FlashSafetyConfig": "flash",
    "FlashLimiter": "flash",
    "OutputSettings": "settings",
    "RendererConfig": "settings",
    "Renderer": "renderer",
    "RenderStats": "renderer",
    "OutputWindow": "window",
    "WindowConfig": "window",
    "Action": "keys",
    "KEY_BINDINGS": "keys",
    "MonitorInfo": "monitors",
    "list_monitors": "monitors",
    "find_monitor": "monitors",
    "NoDisplayError": "errors",
    "NoGLError": "errors",
    "create_offscreen_context": "context",
    "fit_frames": "fit",
    "place": "geometry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vjgan.display' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
