"""User-facing audio errors: the CLI prints them as one `vjgan: ...` line, without a traceback."""

from __future__ import annotations

from vjgan.errors import UserError


class AudioDeviceError(UserError):
    """An audio input device cannot be found or opened (wrong name or index, missing backend)."""


class AudioFileError(UserError):
    """An audio file cannot be read or decoded."""


class AudioConfigError(UserError):
    """Analysis settings (bands, time constants, tempo range) are out of range or inconsistent."""
