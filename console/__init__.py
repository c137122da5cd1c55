"""The web console: an ASGI app (Starlette, Jinja2 pages, htmx for the live parts) for
operators, over the services' public API through the Python client (`nudge_client`), signed
in with an app's admin key that stays on the server. Tooling like `nudgetools`, whose helpers
it reuses (campaign files, diffs of versions); no service imports it.

    settings.py   NUDGE_CONSOLE_* variables, read once
    sessions.py   the server-side session store: the admin key, its client, CSRF tokens
    app.py        build_app(settings): routes, sign-in, CSRF, the pages' wiring
    pages/        one module per page group (campaigns, preview, results, segments, users, settings)
    forms.py      pure: a campaign's form and YAML editor <-> its message, errors at their fields
    charts.py     pure: Vega-Lite specs of the results; render.py turns them into SVG
    grpcweb.py    pure: gRPC-Web framing for the preview frames' SDK
"""
