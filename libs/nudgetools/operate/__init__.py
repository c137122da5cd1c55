"""The `nudge` commands that operate a running installation through the Python client
(`nudge_client`), never its database: campaigns as files (`apply`, `diff`, `export`),
campaigns, segments, users, previews, test sends and stats.

    target.py    where the services are (--target / NUDGE_TARGET) and the admin key
    changes.py   pure: what differs between two documents, field by field; segment order
    state.py     the app's segments, campaigns and settings as the services hold them
    files.py     apply, diff and export
    commands.py  campaigns, segments, users, preview, send-test
    output.py    tables for people, JSON or YAML for scripts, progress bars
    parser.py    the subcommands, wired into `nudge` by nudgetools.cli
"""
