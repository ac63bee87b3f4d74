"""Typed client for the orders service: purchase orders, transfer records and their statistics.
Its errors arrive as the service's own ApiError (http.py): ORDER_NOT_FOUND, ORDER_INVALID_STATE,
TRANSFER_NOT_FOUND, TRANSFER_INVALID_STATE, …"""

from __future__ import annotations

from typing import Any, cast

from central.clients.http import ServiceClient
from central.clients.models import Order, Page, Transfer


def _filters(**given: str | int | None) -> dict[str, str]:
    """Query parameters for a list: only the filters given, as text."""
    return {k: str(v) for k, v in given.items() if v is not None}


class OrdersClient(ServiceClient):
    # ----- orders -----
    async def create_order(
        self,
        order_id: str,
        user_id: str,
        seat_id: str,
        event_id: str,
        credits_charged: int,
        hold_id: str,
    ) -> Order:
        """A PENDING order; the same order_id again answers the stored one."""
        body = {
            "order_id": order_id,
            "user_id": user_id,
            "seat_id": seat_id,
            "event_id": event_id,
            "credits_charged": credits_charged,
            "hold_id": hold_id,
        }
        return cast(Order, await self.call("POST", "/orders", json=body))

    async def transition_order(
        self, order_id: str, to: str, *, reason: str | None = None, compensation: bool = False
    ) -> Order:
        body: dict[str, Any] = {"to": to}
        if compensation:
            body["compensation"] = True
        if reason is not None:
            body["reason"] = reason
        return cast(Order, await self.call("POST", f"/orders/{order_id}/transition", json=body))

    async def order(self, order_id: str) -> Order:
        return cast(Order, await self.call("GET", f"/orders/{order_id}"))

    async def orders(
        self,
        *,
        seat_id: str | None = None,
        event_id: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        timeout: float | None = None,
    ) -> list[Order]:
        params = _filters(seat_id=seat_id, event_id=event_id, status=status, limit=limit)
        return cast(list[Order], await self.call("GET", "/orders", params=params, timeout=timeout))

    async def orders_of(self, user_id: str, limit: int, offset: int) -> Page[Order]:
        params = _filters(user_id=user_id, limit=limit, offset=offset)
        items, total, block = await self.page("/orders", params)
        return Page(cast(list[Order], items), total, block)

    # ----- transfers -----
    async def create_transfer(
        self,
        transfer_id: str,
        seat_id: str,
        seller_user_id: str,
        buyer_user_id: str,
        credits_amount: int,
        initiated_by: str,
    ) -> Transfer:
        """A transfer record; TRANSFER_IN_PROGRESS when the seat has another live one."""
        body = {
            "transfer_id": transfer_id,
            "seat_id": seat_id,
            "seller_user_id": seller_user_id,
            "buyer_user_id": buyer_user_id,
            "credits_amount": credits_amount,
            "initiated_by": initiated_by,
        }
        return cast(Transfer, await self.call("POST", "/transfers", json=body))

    async def transition_transfer(
        self, transfer_id: str, to: str, *, reason: str | None = None
    ) -> Transfer:
        body = {"to": to} if reason is None else {"to": to, "reason": reason}
        path = f"/transfers/{transfer_id}/transition"
        return cast(Transfer, await self.call("POST", path, json=body))

    async def confirm_party(self, transfer_id: str, party: str) -> Transfer:
        path = f"/transfers/{transfer_id}/confirm-party"
        return cast(Transfer, await self.call("POST", path, json={"party": party}))

    async def transfer(self, transfer_id: str) -> Transfer:
        return cast(Transfer, await self.call("GET", f"/transfers/{transfer_id}"))

    async def transfers(
        self, *, seat_id: str | None = None, status: str | None = None, limit: int
    ) -> list[Transfer]:
        params = _filters(seat_id=seat_id, status=status, limit=limit)
        return cast(list[Transfer], await self.call("GET", "/transfers", params=params))

    async def transfers_page(
        self,
        limit: int,
        offset: int,
        *,
        user_id: str | None = None,
        role: str | None = None,
        status: str | None = None,
    ) -> Page[Transfer]:
        params = _filters(user_id=user_id, role=role, status=status, limit=limit, offset=offset)
        items, total, block = await self.page("/transfers", params)
        return Page(cast(list[Transfer], items), total, block)

    # ----- statistics -----
    async def stats(self, event_id: str) -> dict[str, Any]:
        """One event's figures: orders_by_status, revenue, refunded credits, …"""
        return dict(await self.call("GET", "/stats", params={"event_id": event_id}))

    async def stats_by_event(self, event_ids: list[str]) -> dict[str, Any]:
        params = {"event_ids": ",".join(event_ids)}
        return dict(await self.call("GET", "/stats/events", params=params))
