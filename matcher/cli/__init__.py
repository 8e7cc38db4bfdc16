"""The command-line front end (``matcher ...``), thin over the library: argument parsing,
messages and exit codes. Nothing below imports it."""

from matcher.cli.app import main

__all__ = ["main"]
