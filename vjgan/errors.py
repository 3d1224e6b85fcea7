"""Errors that reach the user as one clear line (the CLI prints them without a traceback)."""


class UserError(Exception):
    """Something the user gave us (a file, a name, a setting) cannot be used; the message says what and why."""
