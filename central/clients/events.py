"""Typed client for the events service: events (with venue and pricing) and gates. Its errors
arrive as the service's own ApiError (http.py): EVENT_NOT_FOUND, GATE_NOT_FOUND, GATE_REVOKED, …"""

from __future__ import annotations

from typing import Any, cast

from central.clients.http import ServiceClient
from central.clients.models import Event, Gate, NewGate, Page


class EventsClient(ServiceClient):
    # ----- events -----
    async def event(self, event_id: str) -> Event:
        return cast(Event, await self.call("GET", f"/events/{event_id}"))

    async def events_page(
        self, page: int, per_page: int, *, hall_id: str | None = None
    ) -> Page[Event]:
        params = {"page": str(page), "per_page": str(per_page)}
        if hall_id is not None:
            params["hall_id"] = hall_id
        items, total, block = await self.page("/events", params)
        return Page(cast(list[Event], items), total, block)

    async def create_event(self, event: dict[str, Any]) -> Event:
        """`event` as events' POST /events takes it (event_id chosen by the caller: a repeat
        answers the stored event)."""
        return cast(Event, await self.call("POST", "/events", json=event))

    async def delete_event(self, event_id: str) -> None:
        await self.call("DELETE", f"/events/{event_id}")

    async def set_event_status(self, event_id: str, status: str, reason: str | None) -> Event:
        body = {"status": status, "reason": reason} if reason else {"status": status}
        return cast(Event, await self.call("POST", f"/events/{event_id}/status", json=body))

    # ----- gates -----
    async def gates(self, hall_id: str | None = None) -> list[Gate]:
        params = {"hall_id": hall_id} if hall_id else None
        return cast(list[Gate], await self.call("GET", "/gates", params=params))

    async def gate(self, gate_id: str) -> Gate:
        return cast(Gate, await self.call("GET", f"/gates/{gate_id}"))

    async def create_gate(self, hall_id: str, name: str) -> NewGate:
        body = {"hall_id": hall_id, "name": name}
        return cast(NewGate, await self.call("POST", "/gates", json=body))

    async def set_gate_enabled(self, gate_id: str, enabled: bool) -> Gate:
        body = {"enabled": enabled}
        return cast(Gate, await self.call("PATCH", f"/gates/{gate_id}", json=body))

    async def authenticate_gate(self, device_token: str) -> Gate:
        """The enabled gate holding this token; GATE_REVOKED for a disabled one, UNAUTHORIZED
        for an unknown token."""
        body = {"device_token": device_token}
        return cast(Gate, await self.call("POST", "/gates/authenticate", json=body))
