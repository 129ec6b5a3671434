"""The agents' side of the team's administration: ``GET /v1/policy`` and
``POST /v1/activity``, both with the agent's API token (``Authorization: Bearer``).

``/v1/policy`` is what an agent reads at enrollment and before its relay starts, so a
send never goes out under a policy older than the server's (the stream then keeps it
current). ``/v1/activity`` takes what only agents know for the team report: each
tracked send and each person's reply, by the message's tracking key.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from mailbeacon.core.policy import TeamPolicy
from mailbeacon.server.reader import Reader
from mailbeacon.server.recorder import Recorder
from mailbeacon.server.store import Store
from mailbeacon.server.team import ACTIVITY_KINDS, load_policy, record_activity
from mailbeacon.server.users import hash_token

log = logging.getLogger(__name__)

_MAX_TOKEN_CHARS = 512
_MAX_BODY = 256 * 1024
_MAX_ITEMS = 1000
_NO_STORE = {"cache-control": "no-store"}


class TeamApi:
    """The two endpoints, over the server's reader, writer and current policy."""

    def __init__(
        self, reader: Reader, recorder: Recorder, policy: Callable[[], TeamPolicy]
    ) -> None:
        self._reader = reader
        self._recorder = recorder
        self._policy = policy

    def routes(self) -> list[BaseRoute]:
        """The routes to mount on the server's application."""
        return [
            Route("/v1/policy", self.policy, methods=["GET"]),
            Route("/v1/activity", self.activity, methods=["POST"]),
        ]

    async def _user(self, request: Request) -> int | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > _MAX_TOKEN_CHARS:
            return None
        user = await self._reader.user_by_token_hash(hash_token(token))
        return None if user is None else user.id

    async def policy(self, request: Request) -> Response:
        """The account's policy as the stream's ``policy`` message carries it."""
        if await self._user(request) is None:
            return JSONResponse({"error": "unknown API token"}, 401, headers=_NO_STORE)
        # Read now (not the server's polled copy): an agent asks before it sends.
        policy = await self._reader.run(load_policy)
        return JSONResponse({"type": "policy", **policy.to_json()}, headers=_NO_STORE)

    async def activity(self, request: Request) -> Response:
        """Store ``{"items": [{"kind": "sent"|"reply", "message": KEY, "at": ISO}]}``."""
        user_id = await self._user(request)
        if user_id is None:
            return JSONResponse({"error": "unknown API token"}, 401, headers=_NO_STORE)
        body = await request.body()
        items = _items(body) if len(body) <= _MAX_BODY else None
        if items is None:
            return JSONResponse({"error": "malformed activity"}, 400, headers=_NO_STORE)

        def store_all(store: Store) -> None:
            for kind, message, at in items:
                record_activity(store, user_id, kind, message, at)

        await self._recorder.run(store_all)
        return JSONResponse({"stored": len(items)}, headers=_NO_STORE)


def _items(body: bytes) -> list[tuple[str, str, str]] | None:
    try:
        data = json.loads(body)
        raw = data["items"]
        if not isinstance(raw, list) or len(raw) > _MAX_ITEMS:
            return None
        items = [(str(i["kind"]), str(i["message"]), str(i["at"])) for i in raw]
    except (ValueError, KeyError, TypeError):
        return None
    if any(k not in ACTIVITY_KINDS or len(m) > 200 or len(a) > 40 for k, m, a in items):
        return None
    return items
