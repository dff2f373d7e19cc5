"""The console's TypeScript types (frontend/lib/database.types.ts) match the migrations.

They are generated from the database catalog (``python -m neiromatrius_devstack.typegen``, see docs/console.md):
a migration that changes a table, a column, a foreign key or a function without regenerating them
fails here, instead of the console's typecheck silently trusting stale types.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from neiromatrius_devstack.typegen import generate_from_migrations
from tests.conftest import Stack

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "frontend" / "lib" / "database.types.ts"

pytestmark = pytest.mark.local_only  # it creates a scratch database on the stack's server


async def test_committed_types_match_the_migrations(stack: Stack) -> None:
    generated = await generate_from_migrations(stack.database_url, ROOT / "supabase" / "migrations")
    assert generated == COMMITTED.read_text(encoding="utf-8"), (
        "frontend/lib/database.types.ts is stale: regenerate it with "
        "`.venv/bin/python -m neiromatrius_devstack.typegen --database-url <the local stack's DATABASE_URL>` "
        "(docs/console.md)"
    )
    # What the console's queries rely on is in there (the embeds' foreign keys, the row types).
    assert 'foreignKeyName: "replies_outbound_message_id_fkey";' in generated
    assert "classifications: {\n        Row: {" in generated
    assert "health_check: {\n        Args: never;\n        Returns: boolean;" in generated
    # Postgres's one-byte "char" catalog columns (relkind, typcategory, attidentity) read as text: arrays
    # get their element type, an identity column "always" may not be written, views have no Insert.
    categories = generated[generated.index("      categories: {") :]
    assert "          examples: string[];" in categories.split("Insert:")[0]
    assert "          id?: never;" in categories.split("Insert:")[1].split("Update:")[0]
    views = generated[generated.index("    Views: {") : generated.index("    Functions: {")]
    assert "analytics_messages_daily: {" in views and "Insert:" not in views
