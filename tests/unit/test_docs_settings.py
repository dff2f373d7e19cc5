"""docs/operations.md lists every setting as the code has it: generated from ``Settings`` and dokploy/*.yml."""

from __future__ import annotations

from pathlib import Path

from neiromatrius import docs_settings
from neiromatrius.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_has_a_description() -> None:
    missing = [name.upper() for name, field in Settings.model_fields.items() if not field.description]
    assert missing == []


def test_every_compose_only_variable_is_described() -> None:
    rows = docs_settings.compose_rows(ROOT)
    assert {"SUPABASE_NETWORK", "REDIS_PASSWORD", "NEIROMATRIUS_IMAGE"} <= {name for name, *_ in rows}
    assert [name for name, _, _, description in rows if not description] == []


def test_the_docs_settings_tables_agree_with_the_code() -> None:
    """Fails when a setting is added, renamed or changes default without `python -m neiromatrius.docs_settings`."""
    document = (ROOT / docs_settings.DOCS).read_text(encoding="utf-8")
    assert document == docs_settings.replace_section(document, docs_settings.render(ROOT))
    for name in ("CONTEXT_MAX_MESSAGES", "SHUTDOWN_GRACE_SECONDS", "DELIVERY_POLL_SECONDS", "LOG_LEVEL"):
        assert f"| `{name}` |" in document


def test_the_check_command_reports_a_disagreement(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "operations.md").write_text(f"# Ops\n\n{docs_settings.BEGIN}\nstale\n{docs_settings.END}\n")
    assert docs_settings.main(["--root", str(tmp_path), "--check"]) == 1
    assert docs_settings.main(["--root", str(tmp_path)]) == 0
    assert docs_settings.main(["--root", str(tmp_path), "--check"]) == 0
    assert "| `SECRET_KEY` | **required** |" in (tmp_path / "docs" / "operations.md").read_text()
