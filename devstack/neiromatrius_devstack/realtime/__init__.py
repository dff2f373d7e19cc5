"""A Supabase Realtime stand-in: Phoenix channels with ``postgres_changes``, broadcast and presence.

Changes come from a logical replication slot (``pgoutput``) on the ``supabase_realtime``
publication, so every committed change is delivered, in commit order, whoever wrote it; each
subscriber sees it through its own role, JWT claims, RLS policies and column privileges.
"""

from __future__ import annotations

from ..component import Component
from ..context import StackContext
from .app import RealtimeComponent

__all__ = ["RealtimeComponent", "create"]


def create(ctx: StackContext) -> Component:
    """The Realtime component for the gateway to mount under ``/realtime/v1``."""
    return RealtimeComponent(ctx)
