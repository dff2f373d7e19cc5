"""The Edge Function ``supabase/functions/messages`` (Deno): formatted, linted, type-checked, and its
``deno test`` suite run against the stack; plus the table of Python verdicts that suite checks against.

Deno comes from PyPI (the ``deno`` package); npm packages are cached in ``.cache/deno``, so only the
first run downloads them.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import deno
import pytest
from starlette.datastructures import Headers

from neiromatrius.adapters.netguard import is_public_address
from neiromatrius.api.schemas import parse_intake
from tests.conftest import Stack

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_DIR = ROOT / "supabase" / "functions" / "messages"
DENO_DIR = ROOT / ".cache" / "deno"
CONFORMANCE = FUNCTION_DIR / "testdata" / "conformance.json"
# The first run fetches supabase-js from npm; later runs take a few seconds.
DENO_TIMEOUT_SECONDS = 300
SUMMARY = re.compile(r"^(?:ok|FAILED) \| (\d+) passed(?: \((\d+) steps?\))? \| (\d+) failed", re.MULTILINE)


def _deno(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "DENO_DIR": str(DENO_DIR), "NO_COLOR": "1", "DENO_NO_UPDATE_CHECK": "1", **(env or {})}
    started = time.monotonic()
    result = subprocess.run(
        [deno.find_deno_bin(), *args], cwd=FUNCTION_DIR, env=environment,
        capture_output=True, text=True, timeout=DENO_TIMEOUT_SECONDS,
    )  # fmt: skip
    print(f"deno {args[0]}: rc={result.returncode} in {time.monotonic() - started:.1f}s")
    return result


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"


def _sources() -> list[str]:
    return sorted(path.name for path in FUNCTION_DIR.glob("*.ts"))


def _declared_tests() -> int:
    return sum(path.read_text(encoding="utf-8").count("Deno.test(") for path in FUNCTION_DIR.glob("*_test.ts"))


def test_the_conformance_table_holds_the_python_verdicts() -> None:
    """The Deno tests check the function against this table; here the table is checked against the API's code."""
    table: dict[str, Any] = json.loads(CONFORMANCE.read_text(encoding="utf-8"))
    for row in table["addresses"]:
        assert is_public_address(ipaddress.ip_address(row["address"])) is row["public"], row
    settings: Any = SimpleNamespace(max_content_chars=4000)
    for row in table["fingerprints"]:
        parsed = parse_intake(Headers(row["headers"]), row["body"].encode(), settings)
        assert parsed.message.fingerprint == row["fingerprint"], row
    assert any(row["public"] for row in table["addresses"]) and not all(row["public"] for row in table["addresses"])


@pytest.mark.timeout(DENO_TIMEOUT_SECONDS + 60)
def test_the_function_is_formatted_linted_and_type_checked() -> None:
    for args in (("fmt", "--check"), ("lint",), ("check", *_sources())):
        result = _deno(*args)
        assert result.returncode == 0, _output(result)


@pytest.mark.timeout(DENO_TIMEOUT_SECONDS + 60)
def test_deno_test_passes_against_the_stack(stack: Stack) -> None:
    env = {
        "SUPABASE_URL": stack.url,
        "SUPABASE_SERVICE_ROLE_KEY": stack.service_key,
        "SUPABASE_ANON_KEY": stack.anon_key,
    }
    result = _deno("test", "--allow-net", "--allow-env", "--allow-read", env=env)
    assert result.returncode == 0, _output(result)
    summary = SUMMARY.search(result.stdout)
    assert summary is not None, _output(result)
    passed, failed = int(summary.group(1)), int(summary.group(3))
    assert (passed, failed) == (_declared_tests(), 0), _output(result)
