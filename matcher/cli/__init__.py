"""The command-line front end (``matcher ...``), thin over the library: argument parsing,
messages and exit codes, one module per command group (:mod:`~matcher.cli.group`: the group,
shared options and the error guard; ``solve``; ``inspect``: validate, diff, explain, schema,
scores; ``files``: import, template, report; ``tools``: generate, bench; ``serve``: the web
app). It may import every
layer below; nothing imports it. The threaded cancellable runner and the exception-to-message
mapping it uses live in :mod:`matcher.engine.runner`, for any front end."""

from matcher.cli import files, inspect, serve, solve, tools
from matcher.cli.group import main

__all__ = ["files", "inspect", "main", "serve", "solve", "tools"]
