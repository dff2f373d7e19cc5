"""Holds every fake in ``fakes.py`` to its port: mypy (``make lint``) fails when a fake drifts from the
Protocol it stands in for. Nothing here runs; the assignments are the check."""

from __future__ import annotations

from neiromatrius.core.ports import (
    CategorySource,
    Deliverer,
    DeliveryLog,
    Feed,
    MessageIntake,
    QueueMonitor,
    RateLimiter,
    ReplyWaiter,
    Resolver,
    Responder,
    UrlGuard,
    WorkQueue,
)
from neiromatrius.errors import UnusableAnswer

from .fakes import (
    FakeCategorySource,
    FakeDeliverer,
    FakeDeliveryLog,
    FakeFeed,
    FakeMessageIntake,
    FakeQueueMonitor,
    FakeRateLimiter,
    FakeReplyWaiter,
    FakeResolver,
    FakeResponder,
    FakeUrlGuard,
    FakeWorkQueue,
)


def fakes_implement_their_ports() -> None:
    intake: MessageIntake = FakeMessageIntake()
    queue: WorkQueue = FakeWorkQueue()
    log: DeliveryLog = FakeDeliveryLog()
    monitor: QueueMonitor = FakeQueueMonitor()
    responder: Responder = FakeResponder(UnusableAnswer("unused"))
    deliverer: Deliverer = FakeDeliverer({})
    guard: UrlGuard = FakeUrlGuard()
    waiter: ReplyWaiter = FakeReplyWaiter()
    limiter: RateLimiter = FakeRateLimiter()
    resolver: Resolver = FakeResolver()
    feed: Feed = FakeFeed(lambda _id: None, lambda: None)
    categories: CategorySource = FakeCategorySource()
    del intake, queue, log, monitor, responder, deliverer, guard, waiter, limiter, resolver, feed, categories
