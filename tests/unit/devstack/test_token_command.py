from pathlib import Path

import pytest

from neiromatrius.cli import main
from neiromatrius_devstack import jwt, state


def test_token_is_signed_with_the_stacks_secret(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secrets = state.load_or_create(tmp_path)
    sub = "22222222-2222-2222-2222-222222222222"
    assert main(["token", "--data-dir", str(tmp_path), "--sub", sub, "--email", "op@example.com"]) == 0
    claims = jwt.verify(capsys.readouterr().out.strip(), secrets.jwt_secret)
    assert (claims["sub"], claims["email"], claims["role"]) == (sub, "op@example.com", "authenticated")


def test_token_without_a_stack_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "--data-dir", str(tmp_path / "missing")]) == 1
    assert "make run" in capsys.readouterr().err


def test_secrets_survive_a_reload(tmp_path: Path) -> None:
    assert state.load_or_create(tmp_path) == state.load_or_create(tmp_path)
    assert (tmp_path / state.SECRETS_FILE).stat().st_mode & 0o077 == 0
