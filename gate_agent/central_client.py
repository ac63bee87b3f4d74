"""The gate's side of api-contract "Verification" and "Gates": verify, manifest, checkins over
httpx, each request and answer one of the models central uses too (proto/gate_api.py). Each
exchange also measures the clock offset. Failures become these exception types: the gate decides
offline on CentralUnavailable (an answer the shared model refuses included), alarms on
CentralAuthError, drops on CentralRejected, and disables itself on CentralRevoked (never
"offline": a revoked gate must stop admitting)."""

from __future__ import annotations

import logging
import ssl
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

from gate_agent.clock import CentralClock, server_time_of
from proto.gate_api import (
    CHECKINS_PATH,
    GATE_REVOKED,
    MANIFEST_PATH,
    VERIFY_PATH,
    CheckinAnswer,
    CheckinItem,
    CheckinsAnswer,
    CheckinsBody,
    GateMessage,
    GateMessageError,
    GateVerifyBody,
    ManifestAnswer,
    VerifyAnswer,
)

M = TypeVar("M", bound=GateMessage)

logger = logging.getLogger(__name__)


class CentralUnavailable(Exception):
    """No usable answer: connection refused, timeout, 5xx, or a body that is not the envelope."""


class CentralAuthError(Exception):
    """401: the device token is unknown or the gate was disabled. Nothing to retry soon."""


class CentralRevoked(CentralAuthError):
    """401 GATE_REVOKED: the operator revoked this gate. It must stop admitting, also from its
    manifest, until central accepts its token again."""


class CentralRejected(Exception):
    """A 4xx other than 401: central will never accept this request as it is."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"central answered {status}: {body!r}"[:300])
        self.status = status
        self.body = body


class CentralClient:
    def __init__(
        self,
        base_url: str,
        device_token: str,
        clock: CentralClock,
        *,
        timeout: float = 0.8,
        ca_file: Path | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        verify: ssl.SSLContext | bool = True
        if ca_file is not None:
            # pinned: only this CA, not the system store
            verify = ssl.create_default_context(cafile=str(ca_file))
        self.base_url = base_url.rstrip("/")
        self.clock = clock
        self.timeout = timeout
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {device_token}"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 2.0)),
            verify=verify,
            transport=transport,  # tests: a network that loses or delays answers on purpose
        )

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, *, timeout: float | None = None, **kwargs: Any) -> Any:
        sent = self.clock.wall()
        try:
            resp = self._http.request(
                method,
                path,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
                **kwargs,
            )
        except httpx.HTTPError as exc:
            raise CentralUnavailable(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        received = self.clock.wall()
        try:
            body = resp.json()
        except ValueError:
            body = None
        stamp = server_time_of(resp.headers, body)
        if stamp is not None:
            self.clock.observe(sent, received, *stamp)
        if resp.status_code == 401:
            if isinstance(body, dict) and body.get("error_code") == GATE_REVOKED:
                raise CentralRevoked(f"{method} {path}: the operator revoked this gate")
            raise CentralAuthError(f"{method} {path}: central refused the device token")
        if resp.status_code >= 500 or resp.status_code in (408, 429):
            raise CentralUnavailable(f"{method} {path}: HTTP {resp.status_code}")
        if resp.status_code >= 400:
            raise CentralRejected(resp.status_code, body)
        if not isinstance(body, dict) or not body.get("success") or "data" not in body:
            raise CentralUnavailable(f"{method} {path}: not an API envelope")
        return body["data"]

    def verify(self, qr_payload: str, scan_id: str, scanned_at: float) -> VerifyAnswer:
        """Central's verdict on one scan; `scanned_at` in central's unix seconds."""
        try:
            body = GateVerifyBody.make(
                qr_payload=qr_payload,
                scan_id=scan_id,
                scanned_at=datetime.fromtimestamp(scanned_at, UTC),
            )
        except GateMessageError as exc:  # what central would refuse is not sent at all
            raise CentralRejected(400, str(exc)) from None
        data = self._call("POST", VERIFY_PATH, json=body.to_json())
        return _answer(VerifyAnswer, data, "verify")

    def manifest(self, cursor: str | None) -> ManifestAnswer:
        params = {"cursor": cursor} if cursor else None
        # a full manifest can be large; it is fetched off the scan path, so it may take longer
        data = self._call("GET", MANIFEST_PATH, params=params, timeout=10.0)
        return _answer(ManifestAnswer, data, "manifest")

    def checkins(self, items: list[CheckinItem]) -> list[CheckinAnswer]:
        try:
            body = CheckinsBody.make(items=items)
        except GateMessageError as exc:
            raise CentralRejected(400, str(exc)) from None
        data = self._call("POST", CHECKINS_PATH, json=body.to_json(), timeout=10.0)
        return _answer(CheckinsAnswer, data, "checkins").items


def _answer(model: type[M], data: Any, what: str) -> M:
    if not isinstance(data, dict):
        raise CentralUnavailable(f"{what}: answer is not an object")
    try:
        return model.from_json(data)
    except GateMessageError as exc:
        raise CentralUnavailable(f"{what}: answer refused ({exc})") from None
