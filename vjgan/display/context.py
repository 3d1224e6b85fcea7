"""An OpenGL context without a window: EGL on Linux (no X server needed), the platform default elsewhere.

Tests, benchmarks and `vjgan render` use it; the live show uses the output window's context.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

import moderngl

from .errors import NoGLError

GL_REQUIRE = 330


def create_offscreen_context() -> moderngl.Context:
    """A standalone GL 3.3+ context; NoGLError (one line) if none can be made."""
    # EGL first on Linux: it works headless (Mesa llvmpipe in CI, the NVIDIA driver on servers);
    # GLX would need an X display. On Windows and macOS the default backend (WGL/CGL) is offscreen.
    backends = ["egl", None] if sys.platform.startswith("linux") else [None]
    failures = []
    for backend in backends:
        try:
            kwargs = {"backend": backend} if backend else {}
            return moderngl.create_context(standalone=True, require=GL_REQUIRE, **kwargs)
        except Exception as e:  # moderngl raises plain Exceptions from the loader
            failures.append(f"{backend or 'default'}: {' '.join(str(e).split())}")
    raise NoGLError("no offscreen OpenGL 3.3 context could be created (" + "; ".join(failures) +
                    "); on Linux install Mesa's EGL (Debian: libegl1 libegl-mesa0 libgl1-mesa-dri)")


def release_offscreen_context(ctx: moderngl.Context) -> None:
    """Release a context from `create_offscreen_context`, leaving the thread free for GLX."""
    ctx.release()
    release_egl_thread()


def release_egl_thread() -> None:
    """Hand this thread's EGL state back (Linux; a no-op where EGL was never used).

    With libglvnd and Mesa, once an EGL context has been current on a thread, a GLX context
    created afterwards (a glfw window) fails MakeCurrent with BadAccess — and Xlib's default
    error handler then exits the process — unless the thread's EGL state was released before
    the GLX context was created. An EGL context that is still alive cannot be rescued this way:
    keep offscreen rendering and windows in separate processes (as `vjgan render` and
    `vjgan live` are).
    """
    if not sys.platform.startswith("linux"):
        return
    path = ctypes.util.find_library("EGL")
    if path is None:
        return
    try:
        ctypes.CDLL(path).eglReleaseThread()
    except (OSError, AttributeError):
        pass  # no usable EGL after all: nothing to release
