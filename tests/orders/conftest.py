"""An orders service on a real database (SQLite and PostgreSQL), spoken to over real HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from service_api import ServiceApi

from central.config import Settings
from central.orders.app import create_app, store_key

TOKEN = "orders-test-token"
Api = ServiceApi


@pytest.fixture
async def api(aiohttp_client: Any, db_url: str, tmp_path: Path) -> ServiceApi:
    settings = Settings(
        data_dir=tmp_path, internal_token=TOKEN, service_database_urls={"orders": db_url}
    )
    app = create_app(settings)
    return ServiceApi(await aiohttp_client(app), app, TOKEN, store_key)
