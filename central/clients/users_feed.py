"""What the orchestrator's access-token check reads from the users service
(central/orchestrator/access_tokens.py), over its REST API."""

from __future__ import annotations

from typing import Any

from central.clients.http import ServiceClient


class UsersFeedOverHttp:
    def __init__(self, users: ServiceClient) -> None:
        self.users = users

    async def revocations(self, since: int | None) -> dict[str, Any]:
        """{cursor, revoked: [{key, expires_at}], changed_users: [user_id]} since ``since``
        (the previous answer's cursor)."""
        params = {"since": str(since)} if since is not None else None
        answer: dict[str, Any] = await self.users.call("GET", "/auth/revocations", params=params)
        return answer

    async def user(self, user_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = await self.users.call("GET", f"/users/{user_id}")
        return answer

    async def introspect(self, token: str) -> dict[str, Any]:
        answer: dict[str, Any] = await self.users.call(
            "POST", "/auth/introspect", json={"token": token}
        )
        return answer
