"""``python -m tests.reliability.fault_listener``: the real listener, built and run as ``neiromatrius
listener`` builds and runs it (``serve_listener``), that SIGKILLs itself at one step of its first message.

``FAULT_STAGE`` picks the step:

- ``after_claim``      a message is leased, the model not yet called;
- ``after_model``      the model answered, nothing written yet;
- ``after_reply``      classification + reply stored, nothing delivered;
- ``during_delivery``  the receiver has the webhook (and answered), the attempt is not recorded.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

from neiromatrius import logs
from neiromatrius.composition import Seams
from neiromatrius.config import load_settings
from neiromatrius.core.models import (
    ClaimedMessage,
    Completion,
    ContextMessage,
    DeliveryAttempt,
    DeliveryJob,
    MessageState,
    Triage,
)
from neiromatrius.core.ports import Deliverer, Responder, WorkQueue
from neiromatrius.serve import serve_listener

STAGES = ("after_claim", "after_model", "after_reply", "during_delivery")


def die(stage: str) -> None:
    print(f"fault_listener: SIGKILL {stage}", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


class KillingStore:
    """The store, dying right after a claim that leased a message, or right after a reply write."""

    def __init__(self, store: WorkQueue, stage: str) -> None:
        self._store = store
        self._stage = stage

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def claim(self, worker: str, limit: int, lease_seconds: float, max_attempts: int) -> list[ClaimedMessage]:
        claimed = await self._store.claim(worker, limit, lease_seconds, max_attempts)
        if claimed and self._stage == "after_claim":
            die(self._stage)
        return claimed

    async def complete(
        self, message_id: str, worker: str, triage: Triage, state: MessageState, lease_delivery: float | None = None
    ) -> Completion:
        done = await self._store.complete(message_id, worker, triage, state, lease_delivery)
        if self._stage == "after_reply":
            die(self._stage)
        return done


class KillingResponder:
    def __init__(self, responder: Responder) -> None:
        self._responder = responder

    async def respond(self, message: ClaimedMessage, context: list[ContextMessage]) -> Triage:
        await self._responder.respond(message, context)
        die("after_model")
        raise AssertionError("unreachable")


class KillingDeliverer:
    def __init__(self, deliverer: Deliverer) -> None:
        self._deliverer = deliverer

    async def deliver(self, job: DeliveryJob) -> DeliveryAttempt:
        await self._deliverer.deliver(job)
        die("during_delivery")
        raise AssertionError("unreachable")


def seams(stage: str) -> Seams:
    if stage not in STAGES:
        raise SystemExit(f"FAULT_STAGE must be one of {', '.join(STAGES)}, not {stage!r}")
    if stage == "after_model":
        return Seams(responder=KillingResponder)
    if stage == "during_delivery":
        return Seams(deliverer=KillingDeliverer)
    return Seams(store=lambda store: KillingStore(store, stage))


def main() -> int:
    logs.configure(os.environ.get("LOG_LEVEL", "INFO"))
    stage = seams(os.environ.get("FAULT_STAGE", ""))
    asyncio.run(serve_listener(load_settings(), stage))
    return 0


if __name__ == "__main__":
    sys.exit(main())
