"""The small sample event `serve --seed-sample` creates on an empty system."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from central.orchestrator import admin_ops
from central.orchestrator.backends import Backends
from central.orchestrator.schemas import CreateEventBody

log = logging.getLogger(__name__)

SAMPLE_EVENT = {
    "name": "Sample Night: The Remastered Tour",
    "venue": {"name": "Sample Arena", "address": "1 Example Street"},
    "hall_id": "HALL-A",
    "pricing": {"CAT1": 350, "CAT2": 250},
    "seats": {"rows": 4, "seats_per_row": 5, "category_rows": {"CAT1": ["A", "B"]}},
}


async def seed_sample_event(backends: Backends) -> str | None:
    """Create the sample event unless events already exist; answer its id when created."""
    if (await backends.events.events_page(1, 1)).items:
        return None
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    body = CreateEventBody.model_validate({**SAMPLE_EVENT, "event_date": start}, strict=False)
    created = await admin_ops.create_event(backends, body)
    log.info("seeded the sample event", extra={"fields": {"event_id": created["event_id"]}})
    return created["event_id"]
