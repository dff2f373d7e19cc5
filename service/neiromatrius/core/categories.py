"""The categories the model may choose: the business edits them (the ``categories`` table), running
listeners pick the change up without a restart.

``CategoryCatalog`` holds the current list as one immutable snapshot that is replaced whole, so a model
call reads one consistent list (its prompt, its schema's enum and the check of its answer agree) even if
an edit lands while it runs. ``CategoryRefresher`` reloads it: when Realtime says the table changed, and
at most every ``max_age`` seconds otherwise (a missed event costs that long, never a restart).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import StoreError
from .models import Category
from .ports import CategorySource

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CategorySnapshot:
    categories: tuple[Category, ...]
    version: int  # grows with every change: what a responder caches its prompt and schema by

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(category.name for category in self.categories)


class CategoryCatalog:
    def __init__(self, categories: Sequence[Category | str]) -> None:
        self._snapshot = CategorySnapshot(_categories(categories), 0)
        if not self._snapshot.categories:
            raise ValueError("a category catalog needs at least one category")

    @property
    def current(self) -> CategorySnapshot:
        return self._snapshot

    def replace(self, categories: Sequence[Category]) -> bool:
        """Take a new list; False (and nothing changes) when it is the same, or empty."""
        new = tuple(categories)
        if not new or new == self._snapshot.categories:
            return False
        self._snapshot = CategorySnapshot(new, self._snapshot.version + 1)
        return True


def as_catalog(categories: Sequence[Category | str] | CategoryCatalog) -> CategoryCatalog:
    """A fixed list (settings, tests) becomes a catalog that never changes."""
    return categories if isinstance(categories, CategoryCatalog) else CategoryCatalog(categories)


def _categories(items: Sequence[Category | str]) -> tuple[Category, ...]:
    return tuple(item if isinstance(item, Category) else Category(name=item) for item in items)


class CategoryRefresher:
    """Reloads a catalog from its source: on request (a change event) and when it is older than ``max_age``."""

    def __init__(
        self,
        source: CategorySource,
        catalog: CategoryCatalog,
        max_age: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._catalog = catalog
        self._max_age = max_age
        self._clock = clock
        self._loaded_at: float | None = None
        self._again = False
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> bool:
        """Read the table now; True when the list changed. A failure keeps the list the listener has."""
        try:
            categories = await self._source.categories()
        except StoreError as exc:
            logger.warning("categories: could not read them (%s); keeping the %d known", exc.message,
                           len(self._catalog.current.categories))  # fmt: skip
            return False
        self._loaded_at = self._clock()
        if not categories:
            logger.warning("categories: none is active; keeping the %d known", len(self._catalog.current.categories))
            return False
        changed = self._catalog.replace(categories)
        if changed:
            logger.info("categories: %s (version %d)", ", ".join(self._catalog.current.names),
                        self._catalog.current.version)  # fmt: skip
        return changed

    def request(self) -> None:
        """A change was announced: reload soon, once for a flurry of events (callable from a callback)."""
        if self._task is not None and not self._task.done():
            self._again = True  # the running read may have started before this change committed
            return
        self._task = asyncio.get_running_loop().create_task(self._refresh_until_quiet())

    def stale(self) -> bool:
        return self._loaded_at is None or self._clock() - self._loaded_at >= self._max_age

    async def _refresh_until_quiet(self) -> None:
        while True:
            self._again = False
            await self.refresh()
            if not self._again:
                return

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
