"""``kubectl jobwarden dashboard``: a local web UI acting with the user's own identity.

:mod:`.server` starts it; :mod:`.app` holds the routes, :mod:`.security` the
token, cookie, Host and CSRF rules, :mod:`.hub` the one watch fanned out to
every page, :mod:`.views` and :mod:`.compose` what the pages show (pure), and
``pages/`` and ``static/`` the HTML, CSS and scripts shipped in the wheel.
"""
