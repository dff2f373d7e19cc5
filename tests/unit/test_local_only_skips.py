"""Against a real Supabase (``SUPABASE_URL`` set), the local-only tests are reported as skipped, with the reason,
so the run's summary says what it did not cover."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import LOCAL_ONLY_REASON

ROOT = Path(__file__).resolve().parents[2]
LOCAL_ONLY_TEST = "tests/e2e/test_make_run.py::test_run_starts_everything_and_the_printed_curl_gets_an_answer"


def test_local_only_tests_are_skipped_with_the_reason_when_supabase_url_is_set(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SUPABASE_", "DATABASE_URL"))}
    env["SUPABASE_URL"] = "http://127.0.0.1:9"  # never contacted: the only test collected is local-only
    result = subprocess.run(
        [sys.executable, "-m", "pytest", LOCAL_ONLY_TEST, "-p", "no:cacheprovider", "-rs",
         "--basetemp", str(tmp_path / "run")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout, result.stdout
    assert "deselected" not in result.stdout, result.stdout
    assert "SKIPPED [1] tests/e2e/test_make_run.py" in result.stdout, result.stdout
    assert LOCAL_ONLY_REASON in result.stdout, result.stdout


def test_without_supabase_url_local_only_tests_are_collected_unmarked(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "SUPABASE_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", LOCAL_ONLY_TEST, "-p", "no:cacheprovider", "--collect-only",
         "-q", "--basetemp", str(tmp_path / "run")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 test collected" in result.stdout, result.stdout
