"""Typed client for the users service: accounts, tokens, the credit ledger, holds, OTP, top-ups.
Its errors arrive as the service's own ApiError (http.py); the few answers a caller treats as
"none" rather than an error (no such ledger entry, no OTP sent) are answered as None here."""

from __future__ import annotations

from typing import Any, cast

from central.clients.http import ServiceClient
from central.clients.models import (
    CreditHoldPlaced,
    CreditHoldRelease,
    CreditsMoved,
    LedgerEntry,
    OtpChallenge,
    OtpStatus,
    Page,
    TokenClaims,
    Topup,
    User,
)
from central.errors import ApiError


class UsersClient(ServiceClient):
    # ----- accounts -----
    async def create_user(
        self,
        email: str,
        password: str,
        phone: str | None,
        *,
        role: str | None = None,
        is_flagged: bool | None = None,
        verified: bool | None = None,
        timeout: float | None = None,
    ) -> User:
        body: dict[str, Any] = {"email": email, "password": password, "phone": phone}
        extra = {"role": role, "is_flagged": is_flagged, "verified": verified}
        body.update({k: v for k, v in extra.items() if v is not None})
        return cast(User, await self.call("POST", "/users", json=body, timeout=timeout))

    async def user(self, user_id: str) -> User:
        return cast(User, await self.call("GET", f"/users/{user_id}"))

    async def user_by_email(self, email: str) -> User:
        return cast(User, await self.call("GET", "/users", params={"email": email}))

    async def search_users(self, email: str, limit: int) -> list[User]:
        params = {"email": email, "limit": str(limit)}
        return cast(list[User], await self.call("GET", "/users/search", params=params))

    async def update_user(self, user_id: str, changes: dict[str, object]) -> User:
        return cast(User, await self.call("PATCH", f"/users/{user_id}", json=changes))

    # ----- tokens (answers passed on to the public API as they are) -----
    async def verify_registration(self, user_id: str, otp_code: str) -> dict[str, Any]:
        body = {"user_id": user_id, "otp_code": otp_code}
        return dict(await self.call("POST", "/auth/verify-registration", json=body))

    async def login(
        self, email: str, password: str, *, timeout: float | None = None
    ) -> dict[str, Any]:
        body = {"email": email, "password": password}
        return dict(await self.call("POST", "/auth/login", json=body, timeout=timeout))

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        body = {"refresh_token": refresh_token}
        return dict(await self.call("POST", "/auth/refresh", json=body))

    async def logout(self, token: str) -> None:
        await self.call("POST", "/auth/logout", json={"token": token})

    async def introspect(self, token: str) -> TokenClaims:
        return cast(TokenClaims, await self.call("POST", "/auth/introspect", json={"token": token}))

    # ----- the ledger -----
    async def balance(self, user_id: str) -> int:
        return int((await self.call("GET", f"/credits/{user_id}/balance"))["credit_balance"])

    async def history(self, user_id: str, page: int, per_page: int) -> Page[LedgerEntry]:
        params = {"page": str(page), "per_page": str(per_page)}
        items, total, block = await self.page(f"/credits/{user_id}/history", params)
        return Page(cast(list[LedgerEntry], items), total, block)

    async def post_entry(
        self,
        user_id: str,
        amount: int,
        kind: str,
        idempotency_key: str,
        reference_id: str | None = None,
    ) -> LedgerEntry:
        """One ledger entry (negative `amount`: a debit). The same key twice is one entry: the
        second call answers the first (replayed). INSUFFICIENT_CREDITS when a debit would
        overdraw."""
        body: dict[str, Any] = {
            "user_id": user_id,
            "amount": amount,
            "kind": kind,
            "idempotency_key": idempotency_key,
        }
        if reference_id is not None:
            body["reference_id"] = reference_id
        return cast(LedgerEntry, await self.call("POST", "/credits/entries", json=body))

    async def debit(self, user_id: str, amount: int, key: str, reference_id: str) -> LedgerEntry:
        return await self.post_entry(user_id, -amount, "PURCHASE", key, reference_id)

    async def refund(self, user_id: str, amount: int, key: str, reference_id: str) -> LedgerEntry:
        return await self.post_entry(user_id, amount, "REFUND", key, reference_id)

    async def grant(self, user_id: str, amount: int, key: str) -> LedgerEntry:
        return await self.post_entry(user_id, amount, "GRANT", key)

    async def entry(self, idempotency_key: str) -> LedgerEntry | None:
        """The entry recorded under this key, or None when there is none."""
        try:
            return cast(LedgerEntry, await self.call("GET", f"/credits/entries/{idempotency_key}"))
        except ApiError as exc:
            if exc.code == "NOT_FOUND":
                return None
            raise

    async def move_credits(
        self,
        from_user_id: str,
        to_user_id: str,
        amount: int,
        key: str,
        reference_id: str,
        *,
        release_hold: str | None = None,
    ) -> CreditsMoved:
        """Debit one user and credit another in one ledger transaction (entries `key:debit`
        and `key:credit`); `release_hold` ends that credit hold in the same transaction."""
        body: dict[str, Any] = {
            "from_user_id": from_user_id,
            "to_user_id": to_user_id,
            "amount": amount,
            "idempotency_key": key,
            "reference_id": reference_id,
        }
        if release_hold is not None:
            body["release_hold"] = release_hold
        return cast(CreditsMoved, await self.call("POST", "/credits/transfer", json=body))

    async def hold_credits(self, user_id: str, amount: int, reference_id: str) -> CreditHoldPlaced:
        body = {"user_id": user_id, "amount": amount, "reference_id": reference_id}
        return cast(CreditHoldPlaced, await self.call("POST", "/credits/holds", json=body))

    async def release_credits(self, reference_id: str) -> CreditHoldRelease:
        body = {"reference_id": reference_id}
        return cast(CreditHoldRelease, await self.call("POST", "/credits/holds/release", json=body))

    # ----- one-time codes -----
    async def otp_status(self, user_id: str, purpose: str, reference_id: str) -> OtpStatus | None:
        """The code sent for this, or None when none was sent."""
        params = {"user_id": user_id, "purpose": purpose, "reference_id": reference_id}
        try:
            return cast(OtpStatus, await self.call("GET", "/otp/status", params=params))
        except ApiError as exc:
            if exc.code == "OTP_NOT_FOUND":
                return None
            raise

    async def send_otp(self, user_id: str, purpose: str, reference_id: str) -> OtpChallenge:
        body = {"user_id": user_id, "purpose": purpose, "reference_id": reference_id}
        return cast(OtpChallenge, await self.call("POST", "/otp/challenges", json=body))

    async def resend_otp(self, user_id: str, purpose: str, reference_id: str) -> dict[str, Any]:
        body = {"user_id": user_id, "purpose": purpose, "reference_id": reference_id}
        return dict(await self.call("POST", "/otp/resend", json=body))

    async def verify_otp(self, user_id: str, purpose: str, reference_id: str, code: str) -> None:
        """OTP_INVALID, OTP_EXPIRED or OTP_MAX_RETRIES (the third wrong code) when refused."""
        body = {"user_id": user_id, "purpose": purpose, "reference_id": reference_id, "code": code}
        await self.call("POST", "/otp/verify", json=body)

    # ----- money in -----
    async def create_topup(self, user_id: str, amount: int, site_url: str) -> Topup:
        body = {"user_id": user_id, "amount": amount, "site_url": site_url}
        # a real provider's API may take a few seconds
        return cast(Topup, await self.call("POST", "/topups", json=body, timeout=30))

    async def topup(self, topup_id: str) -> Topup:
        return cast(Topup, await self.call("GET", f"/topups/{topup_id}"))

    async def stripe_webhook(self, payload: str, signature: str | None) -> bool:
        """True when the event changed something (a top-up paid)."""
        body = {"payload": payload, "signature": signature}
        answer = await self.call("POST", "/payments/stripe/webhook", json=body)
        return bool(answer.get("handled"))

    async def demo_quote(self, topup_id: str, secret: str) -> dict[str, Any]:
        body = {"topup_id": topup_id, "secret": secret}
        return dict(await self.call("POST", "/payments/demo/quote", json=body))

    async def demo_complete(self, topup_id: str, secret: str) -> dict[str, Any]:
        body = {"topup_id": topup_id, "secret": secret}
        return dict(await self.call("POST", "/payments/demo/complete", json=body))
