"""The internal token as a file, for container stacks: `python -m nudgetools.tokens PATH`.

docker-compose.yml runs this once, before any service, on a volume the services mount
read-only and read through NUDGE_INTERNAL_TOKEN_FILE: `docker compose up` then needs no
secret typed in, and every service (and every replica) gets the same token. An existing file
is kept, so a restarted stack keeps its token; NUDGE_INTERNAL_TOKEN, when set, is written
instead of a generated one (the services check its length when they read it).
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path


def ensure_token_file(path: Path, given: str = "") -> bool:
    """Writes `given` (else a new random token) to `path` unless it already holds one; True
    when it wrote. The file is readable by its owner only and appears whole or not at all."""
    given = given.strip()
    if not given and path.exists() and path.read_text(encoding="utf-8").strip():
        return False
    token = given or secrets.token_hex(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    os.replace(partial, path)
    return True


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m nudgetools.tokens PATH", file=sys.stderr)
        return 2
    path = Path(args[0])
    wrote = ensure_token_file(path, os.environ.get("NUDGE_INTERNAL_TOKEN", ""))
    print(f"internal token {'written to' if wrote else 'kept in'} {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
