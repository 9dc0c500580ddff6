"""Ours without delivery, for comparison only: the receive path alone (verify, decrypt, parse,
route, run the handler in the request thread, seal), with no inbox claim and no thread hand-off.

The product always claims a callback in the durable inbox before its handler runs and runs it
on a worker thread under the 5-second budget; this shows what those two guarantees cost.
"""

from __future__ import annotations

import time

from callback.app import create_app
from callback.delivery.attempt import Attempt
from callback.inbound.messages import Message
from callback.router import Match, Route
from callback.store.records import InboxRecord

app = create_app()
_delivery = app.extensions["wecom.delivery"]


def _inline(
    name: str,
    message: Message,
    as_json: bool,
    found: tuple[Route, Match] | None,
    attempt: Attempt | None = None,
) -> bytes | None:
    if found is None:
        return None
    record = InboxRecord(f"{name}:{message.dedup_key}", name, message.plaintext, as_json)
    reply = _delivery.invoke(record, message, *found)
    if reply is None:
        return None
    corp_id = _delivery.corp_ids[name]
    return reply.render(message.from_user, corp_id, int(time.time()), as_json=as_json)


_delivery.answer = _inline
