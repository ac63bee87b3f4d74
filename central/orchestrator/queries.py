"""Query strings of the list calls the attendee app and the organiser console read. Query values
are text, so these models parse ("2" is 2); unknown parameters are ignored; a bad value is a 400
naming the parameter (central.web.parse_query)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from central.orchestrator.schemas import HALL_PATTERN
from central.orders.states import TransferStatus


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    page: Annotated[int, Field(ge=1, le=100_000)] = 1
    per_page: Annotated[int, Field(ge=1, le=100)] = 20

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


class TransfersQuery(PageQuery):
    role: Annotated[str, Field(pattern=r"^(seller|buyer)$")] | None = None
    status: TransferStatus | None = None


class AdminTransfersQuery(PageQuery):
    status: TransferStatus | None = None


class AdminGatesQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    hall_id: Annotated[str, Field(pattern=HALL_PATTERN)] | None = None


class AdminUsersQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    # a fragment is enough: "alice", "@example.com"
    email: Annotated[str, Field(max_length=254)] = ""
    limit: Annotated[int, Field(ge=1, le=200)] = 50


def pagination(page: int, per_page: int, total: int) -> dict[str, int]:
    return {
        "page": page,
        "per_page": per_page,
        "total": total,
        "total_pages": -(-total // per_page),
    }
