"""The atomic services as the orchestrator sees them."""

from __future__ import annotations

from dataclasses import dataclass

from central.clients.events import EventsClient
from central.clients.inventory import InventoryClient
from central.clients.orders import OrdersClient
from central.clients.users import UsersClient
from central.config import Settings


@dataclass
class Backends:
    users: UsersClient
    orders: OrdersClient
    events: EventsClient
    inventory: InventoryClient

    @classmethod
    def from_addresses(
        cls,
        settings: Settings,
        *,
        users_url: str,
        orders_url: str,
        events_url: str,
        inventory_addr: str,
    ) -> Backends:
        token = settings.secret("internal_token")
        timeout = settings.call_timeout
        return cls(
            users=UsersClient("users", users_url, token, timeout),
            orders=OrdersClient("orders", orders_url, token, timeout),
            events=EventsClient("events", events_url, token, timeout),
            inventory=InventoryClient(inventory_addr, token, timeout),
        )

    async def start(self) -> None:
        for client in (self.users, self.orders, self.events, self.inventory):
            await client.start()

    async def close(self) -> None:
        for client in (self.users, self.orders, self.events, self.inventory):
            await client.close()
