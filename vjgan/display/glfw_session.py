"""glfw started once per process, shared by the output and operator windows.

glfw's initialisation is global and binds to the display that exists at that moment; failure to
start it (no X display, no Wayland compositor, no glfw library) becomes a `NoDisplayError`.

One glfw library per process: the operator console's GUI toolkit (imgui-bundle) links its own
glfw and its input backend is handed our windows, so the `glfw` package must load that same
library, not the copy in its own wheel (two glfw libraries in one process each keep their own
window list and event queue). `PYGLFW_LIBRARY` tells the package which file to load; it is set
before the first `import glfw`, and a value the user set is left alone.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from typing import Any

from .errors import NoDisplayError

log = logging.getLogger(__name__)

_lock = threading.Lock()
_started = False
_last_error = ""


def _on_error(code: int, description: bytes) -> None:
    global _last_error
    _last_error = description.decode("utf-8", "replace") if isinstance(description, bytes) else str(description)
    log.debug("glfw error %s: %s", code, _last_error)


def last_error() -> str:
    return _last_error


def _glfw_library_of_the_console() -> None:
    if os.environ.get("PYGLFW_LIBRARY"):
        return
    import importlib.util

    try:
        spec = importlib.util.find_spec("imgui_bundle")
    except (ImportError, ValueError):
        return
    if spec is None or not spec.submodule_search_locations:
        return
    names = {"darwin": ("libglfw.3.dylib",), "win32": ("glfw3.dll",)}.get(sys.platform, ("libglfw.so.3",))
    for folder in spec.submodule_search_locations:
        for name in names:
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                os.environ["PYGLFW_LIBRARY"] = path
                return


def glfw_module() -> Any:
    """The glfw module, initialised; NoDisplayError if there is no screen to use."""
    global _started
    with _lock:
        if _started:
            import glfw

            return glfw
        if sys.platform.startswith(("linux", "freebsd", "openbsd")) and not (
                os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise NoDisplayError("neither DISPLAY nor WAYLAND_DISPLAY is set")
        if "glfw" not in sys.modules:
            _glfw_library_of_the_console()
        try:
            import glfw
        except (ImportError, OSError) as e:
            raise NoDisplayError(f"the glfw library cannot be loaded: {' '.join(str(e).split())}") from None
        # Our own error callback replaces the package's default (warnings): failures are reported
        # through return values, which we check, with the last message as the reason.
        glfw.set_error_callback(_on_error)
        try:
            ok = glfw.init()
        except Exception as e:  # glfw.GLFWError, if someone set the package to raise
            ok = False
            _on_error(-1, str(e).encode())
        if not ok:
            raise NoDisplayError(f"glfw cannot start: {_last_error or 'unknown reason'}")
        _started = True
        atexit.register(terminate)
        return glfw


def terminate() -> None:
    """Close glfw (all its windows must be gone). The next `glfw_module()` starts it again."""
    global _started
    with _lock:
        if not _started:
            return
        import glfw

        glfw.terminate()
        _started = False
