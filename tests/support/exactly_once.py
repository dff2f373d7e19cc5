"""What "every message answered exactly once" means when quick messages are answered together (bursts):
the one check the exactly-once, volume and kill tests share.

Every customer message of the client is answered and points at one bot reply of its conversation; each
reply answers a run of consecutive messages (its burst) and was stored once, with one classification and
one outbound message; within a conversation the replies come in the order the messages were asked.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import asyncpg


@dataclass(frozen=True)
class Ledger:
    messages: int
    replies: dict[str, str]  # reply id -> the message it names (the burst's first)
    bursts: Counter[int]  # burst size -> how many replies answered that many messages

    @property
    def answered_messages(self) -> set[str]:
        return set(self.replies.values())


async def answered_exactly_once(db: asyncpg.Connection, client_id: str) -> Ledger:
    rows = await db.fetch(
        "select m.id, m.conversation_id, m.state, m.reply_id, m.created_at,"
        " r.message_id as reply_names, r.conversation_id as reply_conversation, r.kind, r.created_at as replied"
        " from messages m left join replies r on r.id = m.reply_id"
        " where m.client_id = $1 and m.direction = 'inbound'",
        client_id,
    )
    assert rows, "no messages"
    assert Counter(row["state"] for row in rows) == {"answered": len(rows)}
    assert all(row["reply_id"] is not None and row["kind"] == "bot" for row in rows)
    assert all(row["reply_conversation"] == row["conversation_id"] for row in rows)

    by_conversation: dict[Any, list[asyncpg.Record]] = {}
    for row in rows:
        by_conversation.setdefault(row["conversation_id"], []).append(row)
    replies: dict[str, str] = {}
    sizes: Counter[int] = Counter()
    for messages in by_conversation.values():
        asked = sorted(messages, key=lambda r: (r["created_at"], r["id"]))
        runs: list[list[asyncpg.Record]] = []
        for row in asked:  # consecutive messages with one reply form a burst
            if runs and runs[-1][0]["reply_id"] == row["reply_id"]:
                runs[-1].append(row)
            else:
                runs.append([row])
        assert len({run[0]["reply_id"] for run in runs}) == len(runs), "a reply answers messages that are not adjacent"
        assert [run[0]["replied"] for run in runs] == sorted(run[0]["replied"] for run in runs), "replies out of order"
        for run in runs:
            assert run[0]["reply_names"] == run[0]["id"], "a burst's reply names its first message"
            replies[str(run[0]["reply_id"])] = str(run[0]["id"])
            sizes[len(run)] += 1

    per_message = await db.fetch(
        "select m.id, (select count(*) from replies x where x.message_id = m.id and x.kind = 'bot') as replies,"
        " (select count(*) from classifications k where k.message_id = m.id) as classifications,"
        " (select count(*) from messages o where o.reply_to = m.id) as outbound"
        " from messages m where m.client_id = $1 and m.direction = 'inbound'",
        client_id,
    )
    heads = set(replies.values())
    for row in per_message:
        expected = 1 if str(row["id"]) in heads else 0
        assert (row["replies"], row["classifications"], row["outbound"]) == (expected,) * 3, dict(row)
    return Ledger(len(rows), replies, sizes)
