"""The local web app (``matcher serve``): a programme team runs an intake from upload to
re-plan in the browser. A front end: it calls :mod:`matcher.workspace`, the edit rules through
it, the renderers, comparison and ``why`` / ``why_not``; nothing below imports it.

:mod:`matcher.web.app` holds the routes, :mod:`matcher.web.security` sessions, CSRF, the Host
check and headers, :mod:`matcher.web.jobs` the background solves, :mod:`matcher.web.server`
starting uvicorn on a free port with a one-time token.
"""
