"""The local stack: an embedded PostgreSQL bootstrapped like Supabase's, a PostgREST-compatible
gateway under ``/rest/v1`` and a Realtime-compatible websocket server under ``/realtime/v1``.

It is a faithful test double for development and tests, not a product, and it imports nothing
from the rest of the package.
"""
