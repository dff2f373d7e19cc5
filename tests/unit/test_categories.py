"""The category catalog and its refresher: a change replaces the list whole; a failed or empty read keeps it."""

from __future__ import annotations

import asyncio

import pytest

from neiromatrius.core.categories import CategoryCatalog, CategoryRefresher
from neiromatrius.core.models import Category
from tests.support.fakes import FakeCategorySource
from tests.support.waiting import eventually

NAMES = ("pricing", "other")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_catalog_changes_version_only_when_the_list_changes() -> None:
    catalog = CategoryCatalog(NAMES)
    first = catalog.current
    assert (first.names, first.version) == (NAMES, 0)

    assert catalog.replace([Category(name="pricing"), Category(name="other")]) is False  # the same list
    assert catalog.replace([]) is False
    assert catalog.current is first

    assert catalog.replace([Category(name="pricing", description="Prices")]) is True
    assert (catalog.current.names, catalog.current.version) == (("pricing",), 1)
    assert first.names == NAMES  # a snapshot taken before is never changed under its reader


def test_a_catalog_needs_a_category() -> None:
    with pytest.raises(ValueError, match="at least one"):
        CategoryCatalog(())


async def test_the_refresher_takes_the_tables_list_and_keeps_the_old_one_when_it_cannot_read() -> None:
    source = FakeCategorySource([Category(name="warranty", description="Repairs")])
    catalog = CategoryCatalog(NAMES)
    clock = Clock()
    refresher = CategoryRefresher(source, catalog, max_age=10, clock=clock)
    assert refresher.stale()

    assert await refresher.refresh() is True
    assert catalog.current.names == ("warranty",)
    assert not refresher.stale()
    clock.now += 10
    assert refresher.stale()

    source.fail = True
    assert await refresher.refresh() is False
    source.fail, source.rows = False, []  # every category deactivated: the model still needs a list
    assert await refresher.refresh() is False
    assert catalog.current.names == ("warranty",)


async def test_a_flurry_of_change_events_reads_the_table_once_more_after_the_read_in_flight() -> None:
    started, release = asyncio.Event(), asyncio.Event()

    class SlowSource(FakeCategorySource):
        async def categories(self) -> list[Category]:
            rows = await super().categories()
            started.set()
            await release.wait()
            return rows

    source = SlowSource([Category(name="a")])
    catalog = CategoryCatalog(NAMES)
    refresher = CategoryRefresher(source, catalog)
    refresher.request()
    await started.wait()
    for _ in range(5):  # changes committed while the first read ran: one more read covers them all
        refresher.request()
    source.rows = [Category(name="b")]
    release.set()

    await eventually(lambda: catalog.current.names == ("b",), 5)
    await refresher.aclose()
    assert (source.reads, catalog.current.version) == (2, 2)
