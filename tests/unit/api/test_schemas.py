"""The pure parts of request parsing: preferences, ids and fingerprints."""

from __future__ import annotations

import json

import pytest
from starlette.datastructures import Headers

from neiromatrius.api.schemas import parse_intake, parse_message_id, prefers_async
from neiromatrius.errors import NotFound

from .harness import CHECKLIST_BODY, CHECKLIST_HEADERS, make_settings


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["respond-async"], True),
        (["Respond-Async ; foo=bar"], True),
        (["return=minimal", "wait=5, respond-async"], True),
        ([], False),
        (["respond-asynchronously"], False),
        (['foo="respond-async"'], False),
        (['foo="a, respond-async"'], False),
        (['foo="a \\" , respond-async"'], False),
        (['foo="a \\" b", respond-async'], True),
    ],
)
def test_prefers_async(values: list[str], expected: bool) -> None:
    assert prefers_async(values) is expected


def test_message_ids_are_lower_cased_uuids() -> None:
    assert parse_message_id("0F8FAD5B-D9CB-469F-A165-70867728950E") == "0f8fad5b-d9cb-469f-a165-70867728950e"
    with pytest.raises(NotFound):
        parse_message_id("0f8fad5bd9cb469fa16570867728950e")


def fingerprint(headers: dict[str, str], body: dict[str, object]) -> str | None:
    parsed = parse_intake(Headers(headers), json.dumps(body).encode(), make_settings())
    return parsed.message.fingerprint


def test_the_fingerprint_covers_the_request_but_not_the_key_or_extras() -> None:
    base = fingerprint(CHECKLIST_HEADERS, CHECKLIST_BODY)

    assert fingerprint({**CHECKLIST_HEADERS, "Idempotency-Key": "k" * 8}, CHECKLIST_BODY) == base
    assert fingerprint(CHECKLIST_HEADERS, {**CHECKLIST_BODY, "extra": 1}) == base
    assert fingerprint({**CHECKLIST_HEADERS, "X-Platform": "TEST"}, CHECKLIST_BODY) == base
    changed = [
        fingerprint({**CHECKLIST_HEADERS, "X-Chat-ID": "test-124"}, CHECKLIST_BODY),
        fingerprint({**CHECKLIST_HEADERS, "X-Webhook-URL": "https://test-webhook.com/other"}, CHECKLIST_BODY),
        fingerprint(CHECKLIST_HEADERS, {**CHECKLIST_BODY, "content": "Другое"}),
        fingerprint(CHECKLIST_HEADERS, {**CHECKLIST_BODY, "client_id": "test_client_002"}),
        fingerprint(CHECKLIST_HEADERS, {**CHECKLIST_BODY, "message_id": "m1"}),
    ]
    assert base not in changed
    assert len(set(changed)) == len(changed)
