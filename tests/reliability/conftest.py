"""Reliability: the service against hostile input and failing neighbours, end to end.

The e2e tier's fixtures are reused here: the API as a real process, the listener in this process,
loopback webhook receivers, and clients cleaned up after each test.
"""

from __future__ import annotations

from tests.e2e.conftest import api, clean_clients, e2e_settings, start_service  # noqa: F401 (fixtures, as in e2e)
