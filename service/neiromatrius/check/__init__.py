"""``neiromatrius check``: the pre-deploy checklist as a command.

Before deploy (the default) it reads the settings like ``Settings`` does (environment over
``--env-file``, default ``.env``), validates every variable on its own, then asks each service they
point at: the database (``SELECT 1``), the migrations it has applied (``supabase/migrations`` against
``supabase_migrations.schema_migrations``, as the Supabase CLI records them), PostgREST and Realtime
with the service key, and OpenAI, Telegram and Redis when their settings are set. After deploy
(``--url``) it asks only the deployed API, which has its own settings: ``/health``,
``/api/health/db`` and the checklist's test message.

One line per check, ✅ or ❌ with the fix to try; a check whose setting is wrong is reported as ❌
"skipped: needs X". ``--json`` prints ``{"ok": bool, "checks": [{"name", "ok", "detail", "fix",
"variable"}]}``. Exit status: 0 when every check passed, 1 when any failed, 2 for usage errors.
"""
