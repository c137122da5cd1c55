"""Secrets read from files (`NUDGE_INTERNAL_TOKEN_FILE`), as compose and Kubernetes hand them
over, and the one-shot writer compose runs to make the token."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from nudgelib.config import ConfigError, ServiceSettings
from nudgetools.tokens import ensure_token_file

URL = {"DATABASE_URL": "postgresql://localhost/nudge"}


def test_the_token_is_read_from_its_file_without_the_newline(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t" * 40 + "\n", encoding="utf-8")
    s = ServiceSettings.from_env("decision", {**URL, "NUDGE_INTERNAL_TOKEN_FILE": str(token)})
    assert s.internal_token == "t" * 40


def test_the_variable_itself_still_works() -> None:
    s = ServiceSettings.from_env("decision", {**URL, "NUDGE_INTERNAL_TOKEN": "v" * 20})
    assert s.internal_token == "v" * 20


@pytest.mark.parametrize("content, message", [
    (None, r"NUDGE_INTERNAL_TOKEN_FILE: cannot read .*missing: No such file"),
    ("", r"NUDGE_INTERNAL_TOKEN_FILE: .* is empty"),
    ("short\n", r"NUDGE_INTERNAL_TOKEN_FILE must be at least 16 characters"),
])
def test_a_bad_token_file_names_the_variable(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "missing"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        ServiceSettings.from_env("decision", {**URL, "NUDGE_INTERNAL_TOKEN_FILE": str(path)})


def test_both_the_variable_and_the_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("f" * 20, encoding="utf-8")
    env = {**URL, "NUDGE_INTERNAL_TOKEN": "v" * 20, "NUDGE_INTERNAL_TOKEN_FILE": str(path)}
    with pytest.raises(ConfigError, match="set NUDGE_INTERNAL_TOKEN or NUDGE_INTERNAL_TOKEN_FILE, not both"):
        ServiceSettings.from_env("decision", env)


def test_a_missing_token_names_both_ways_to_give_it() -> None:
    with pytest.raises(ConfigError, match=r"^NUDGE_INTERNAL_TOKEN \(or NUDGE_INTERNAL_TOKEN_FILE\) is required"):
        ServiceSettings.from_env("decision", URL)


def test_the_writer_generates_once_and_keeps_the_token(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "internal-token"
    assert ensure_token_file(path)
    first = path.read_text(encoding="utf-8")
    assert len(first.strip()) == 64 and first.endswith("\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not ensure_token_file(path)
    assert path.read_text(encoding="utf-8") == first
    assert [p.name for p in path.parent.iterdir()] == ["internal-token"]
    # Another stack's file is another token.
    other = tmp_path / "other"
    ensure_token_file(other)
    assert other.read_text(encoding="utf-8") != first


def test_the_writer_writes_a_given_token_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "internal-token"
    ensure_token_file(path)
    assert ensure_token_file(path, "g" * 32 + "\n")
    assert path.read_text(encoding="utf-8") == "g" * 32 + "\n"


def test_the_written_file_is_what_a_service_reads(tmp_path: Path) -> None:
    path = tmp_path / "internal-token"
    env = {k: v for k, v in os.environ.items() if k != "NUDGE_INTERNAL_TOKEN"}
    result = subprocess.run([sys.executable, "-m", "nudgetools.tokens", str(path)], capture_output=True,
                            text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"internal token written to {path}"
    s = ServiceSettings.from_env("ingestion", {**URL, "NUDGE_INTERNAL_TOKEN_FILE": str(path)})
    assert s.internal_token == path.read_text(encoding="utf-8").strip()
