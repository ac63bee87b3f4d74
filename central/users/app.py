"""The users service's HTTP routes (docs/internal-api.md, "users"): thin handlers that validate,
call the stores and shape the answer."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncEngine

from central.config import Settings
from central.errors import ApiError
from central.users import models as m
from central.users import money
from central.users.clock import Clock, iso, utcnow
from central.users.delivery import OtpDelivery, make_delivery
from central.users.holds import HoldStore
from central.users.ledger import Ledger
from central.users.otp import OtpStore
from central.users.passwords import Passwords
from central.users.payments import PaymentProvider, make_provider
from central.users.schema import STEPS
from central.users.store import User, UserStore, session_key
from central.users.tokens import TokenIssuer
from central.users.topups import TopupStore
from central.web import (
    attach_database,
    created,
    make_app,
    ok,
    parse_body,
    parse_query,
    parse_uuid,
)

log = logging.getLogger(__name__)


@dataclass
class Services:
    users: UserStore
    ledger: Ledger
    otp: OtpStore
    tokens: TokenIssuer
    passwords: Passwords
    delivery: OtpDelivery


services_key = web.AppKey("users_services", Services)
delivery_key = web.AppKey("users_otp_delivery", OtpDelivery)
provider_key = web.AppKey("users_payment_provider", PaymentProvider)


def _svc(request: web.Request) -> Services:
    return request.app[services_key]


async def _send_code(svc: Services, user: User, purpose: str, reference_id: str, code: str) -> None:
    message = {
        "user_id": user.user_id,
        "email": user.email,
        "phone": user.phone,
        "purpose": purpose,
        "reference_id": reference_id,
        "code": code,
        "sent_at": iso(svc.otp.clock()),
    }
    try:
        await svc.delivery.send(message)
    except Exception:
        # The challenge stands; the user can ask for a resend. Never echo the code here.
        log.exception("OTP delivery (%s) failed for %s", svc.delivery.name, user.user_id)


def _token_pair(svc: Services, user: User) -> dict[str, Any]:
    sid = svc.tokens.new_session()
    return {
        "access_token": svc.tokens.access(user.user_id, user.role, sid),
        "refresh_token": svc.tokens.refresh(user.user_id, user.role, sid),
        "token_type": "Bearer",
        "expires_in": svc.tokens.access_ttl,
    }


# ----- users -----
async def create_user(request: web.Request) -> web.Response:
    body = await parse_body(request, m.CreateUser)
    svc = _svc(request)
    user = await svc.users.create_user(
        email=body.email,
        phone=body.phone,
        password_hash=await svc.passwords.hash(body.password),
        role=body.role,
        is_flagged=body.is_flagged,
        verified=body.verified,
        credits=body.credits,
    )
    if not user.is_verified:
        _, code = await svc.otp.create(user.user_id, "registration", user.user_id)
        await _send_code(svc, user, "registration", user.user_id, code)
    log.info("user created", extra={"fields": {"user_id": user.user_id, "role": user.role}})
    return created(user.public())


async def get_user(request: web.Request) -> web.Response:
    user_id = parse_uuid(request.match_info["user_id"], "user_id")
    return ok((await _svc(request).users.get(user_id)).public())


async def find_user(request: web.Request) -> web.Response:
    query = parse_query(request, m.EmailQuery)
    user = await _svc(request).users.find_by_email(query.email)
    if user is None:
        raise ApiError("USER_NOT_FOUND", "no such user")
    return ok(user.public())


async def search_users(request: web.Request) -> web.Response:
    query = parse_query(request, m.UserSearchQuery)
    found = await _svc(request).users.search(query.email or None, query.limit)
    return ok([u.public() for u in found])


async def patch_user(request: web.Request) -> web.Response:
    user_id = parse_uuid(request.match_info["user_id"], "user_id")
    body = await parse_body(request, m.PatchUser)
    user = await _svc(request).users.update(user_id, is_flagged=body.is_flagged, role=body.role)
    return ok(user.public())


# ----- auth -----
async def verify_registration(request: web.Request) -> web.Response:
    body = await parse_body(request, m.VerifyRegistration)
    svc = _svc(request)
    user_id = str(body.user_id)
    user = await svc.users.get(user_id)
    if user.is_verified:
        raise ApiError("ALREADY_VERIFIED", "this account is already verified; log in")
    await svc.otp.verify(user_id, "registration", user_id, body.otp_code)
    user = await svc.users.mark_verified(user_id)
    return ok({**_token_pair(svc, user), "user": user.public()})


async def login(request: web.Request) -> web.Response:
    body = await parse_body(request, m.Login)
    svc = _svc(request)
    if not await svc.users.claim_login_attempt(body.email):
        raise ApiError("RATE_LIMITED", "too many failed logins for this account; try later")
    user = await svc.users.find_by_email(body.email)
    good = await svc.passwords.verify(user.password_hash if user else None, body.password)
    if user is None or not good:
        raise ApiError("UNAUTHORIZED", "wrong e-mail or password")
    await svc.users.login_succeeded(body.email)
    if not user.is_verified:
        raise ApiError("UNVERIFIED_ACCOUNT", "verify the account with the code sent first")
    summary = {
        "user_id": user.user_id,
        "email": user.email,
        "credit_balance": user.credit_balance,
        "role": user.role,
    }
    return ok({**_token_pair(svc, user), "user": summary})


async def refresh(request: web.Request) -> web.Response:
    body = await parse_body(request, m.RefreshBody)
    svc = _svc(request)
    claims = svc.tokens.decode(body.refresh_token)
    if claims.typ != "refresh" or await svc.users.is_revoked(claims.jti, claims.sid):
        raise ApiError("UNAUTHORIZED", "not a valid refresh token")
    try:
        user = await svc.users.get(claims.user_id)
    except ApiError:
        raise ApiError("UNAUTHORIZED", "the account no longer exists") from None
    return ok(
        {
            # The same session: a logout of it ends this token too.
            "access_token": svc.tokens.access(user.user_id, user.role, claims.sid),
            "expires_in": svc.tokens.access_ttl,
        }
    )


async def logout(request: web.Request) -> web.Response:
    body = await parse_body(request, m.TokenBody)
    svc = _svc(request)
    # An expired token may still be logged out (a client cleaning up); only a forged one fails.
    claims = svc.tokens.decode(body.token, check_expiry=False)
    await svc.users.revoke(claims.jti, claims.expires_at)
    if claims.sid:
        # The whole session: its refresh token and every access token refreshed from it, for as
        # long as any of them could still be valid. Other logins of the user are other sessions.
        until = max(claims.expires_at, svc.tokens.session_end(svc.users.clock()))
        await svc.users.revoke(session_key(claims.sid), until)
    log.info("token revoked", extra={"fields": {"user_id": claims.user_id, "typ": claims.typ}})
    return ok({"revoked": True})


async def introspect(request: web.Request) -> web.Response:
    body = await parse_body(request, m.TokenBody)
    svc = _svc(request)
    claims = svc.tokens.decode(body.token)
    if claims.typ != "access":
        raise ApiError("UNAUTHORIZED", "not an access token")
    user, revoked = await svc.users.token_holder(claims.user_id, claims.jti, claims.sid)
    if revoked:
        raise ApiError("UNAUTHORIZED", "token revoked")
    if user is None:
        raise ApiError("UNAUTHORIZED", "the account no longer exists")
    return ok(
        {
            "user_id": user.user_id,
            "email": user.email,
            # The role and flag as they are now, not as when the token was issued.
            "role": user.role,
            "is_flagged": user.is_flagged,
            "jti": claims.jti,
            "expires_at": iso(claims.expires_at),
        }
    )


async def revocations(request: web.Request) -> web.Response:
    """The orchestrators' feed: revocations and changed users since ``since`` (the ``cursor``
    of their previous poll), or every revocation in force without it."""
    query = parse_query(request, m.RevocationsQuery)
    svc = _svc(request)
    since = None if query.since is None else datetime.fromtimestamp(query.since / 1e6, UTC)
    now, revoked, changed = await svc.users.changes_since(since)
    return ok(
        {
            "cursor": int(now.timestamp() * 1_000_000),
            "revoked": [{"key": key, "expires_at": iso(at)} for key, at in revoked],
            "changed_users": changed,
        }
    )


# ----- credits -----
async def balance(request: web.Request) -> web.Response:
    user_id = parse_uuid(request.match_info["user_id"], "user_id")
    total = await _svc(request).ledger.balance(user_id)
    return ok({"user_id": user_id, "credit_balance": total})


async def history(request: web.Request) -> web.Response:
    user_id = parse_uuid(request.match_info["user_id"], "user_id")
    query = parse_query(request, m.PageQuery)
    entries, total = await _svc(request).ledger.history(
        user_id, page=query.page, per_page=query.per_page
    )
    items = [
        {
            "entry_id": e.entry_id,
            "amount": e.amount,
            "kind": e.kind,
            "reference_id": e.reference_id,
            "balance_after": e.balance_after,
            "created_at": e.created_at,
        }
        for e in entries
    ]
    pagination = {
        "page": query.page,
        "per_page": query.per_page,
        "total": total,
        "total_pages": -(-total // query.per_page),
    }
    return ok(items, pagination=pagination)


async def post_entry(request: web.Request) -> web.Response:
    body = await parse_body(request, m.CreditEntry)
    entry, replayed = await _svc(request).ledger.post(
        user_id=str(body.user_id),
        amount=body.amount,
        kind=body.kind,
        key=body.idempotency_key,
        reference_id=body.reference_id,
    )
    return ok(entry.public(replayed=replayed))


async def get_entry(request: web.Request) -> web.Response:
    key = request.match_info["idempotency_key"]
    entry = await _svc(request).ledger.entry(key) if len(key) <= 200 else None
    if entry is None:
        raise ApiError("NOT_FOUND", "no entry with this idempotency key")
    return ok(entry.public(replayed=False))


async def transfer(request: web.Request) -> web.Response:
    body = await parse_body(request, m.Transfer)
    from_balance, to_balance, replayed = await _svc(request).ledger.transfer(
        from_user_id=str(body.from_user_id),
        to_user_id=str(body.to_user_id),
        amount=body.amount,
        key=body.idempotency_key,
        reference_id=body.reference_id,
        release_hold=body.release_hold,
    )
    return ok({"from_balance": from_balance, "to_balance": to_balance, "replayed": replayed})


# ----- OTP -----
async def create_challenge(request: web.Request) -> web.Response:
    body = await parse_body(request, m.OtpTarget)
    svc = _svc(request)
    user = await svc.users.get(str(body.user_id))
    ch, code = await svc.otp.create(user.user_id, body.purpose, str(body.reference_id))
    await _send_code(svc, user, body.purpose, ch.reference_id, code)
    return ok({"challenge_id": ch.challenge_id, "expires_at": iso(ch.expires_at)})


async def verify_otp(request: web.Request) -> web.Response:
    body = await parse_body(request, m.OtpVerify)
    await _svc(request).otp.verify(
        str(body.user_id), body.purpose, str(body.reference_id), body.code
    )
    return ok({"verified": True})


async def resend_otp(request: web.Request) -> web.Response:
    body = await parse_body(request, m.OtpTarget)
    svc = _svc(request)
    user = await svc.users.get(str(body.user_id))
    ch, code = await svc.otp.resend(user.user_id, body.purpose, str(body.reference_id))
    await _send_code(svc, user, body.purpose, ch.reference_id, code)
    status = ch.status(svc.otp.clock())
    return ok(
        {
            "challenge_id": ch.challenge_id,
            "expires_at": status["expires_at"],
            "resends_left": status["resends_left"],
        }
    )


async def otp_status(request: web.Request) -> web.Response:
    query = parse_query(request, m.OtpStatusQuery)
    otp = _svc(request).otp
    ch = await otp.current(str(query.user_id), query.purpose, str(query.reference_id))
    if ch is None:
        raise ApiError("OTP_NOT_FOUND", "no code was sent for this")
    status = ch.status(otp.clock())
    return ok(
        {
            key: status[key]
            for key in ("verified", "attempts_left", "expires_at", "expired", "exhausted")
        }
    )


def create_app(
    settings: Settings,
    *,
    clock: Clock = utcnow,
    password_hasher: PasswordHasher | None = None,
    webhook_base_delay: float = 0.5,
) -> web.Application:
    """The users service. `clock` and `password_hasher` exist for tests (a movable clock, a
    cheaper hash); production uses the defaults."""
    app = make_app("users", internal_token=settings.secret("internal_token"))
    jwt_secret = settings.secret("jwt_secret")

    def open_stores(engine: AsyncEngine) -> None:
        ledger = Ledger(engine, clock)
        app[money.money_key] = money.Money(
            topups=TopupStore(engine, ledger, clock),
            holds=HoldStore(engine, clock),
            provider=app[provider_key],
        )
        app[services_key] = Services(
            users=UserStore(engine, clock),
            ledger=Ledger(engine, clock),
            otp=OtpStore(
                engine,
                jwt_secret,
                clock,
                timedelta(seconds=settings.otp_ttl),
                send_limit=settings.otp_send_limit,
            ),
            tokens=TokenIssuer(
                jwt_secret,
                access_ttl=settings.access_ttl,
                refresh_ttl=settings.refresh_ttl,
                clock=clock,
            ),
            passwords=Passwords(password_hasher),
            delivery=app[delivery_key],
        )

    async def delivery_lifetime(app: web.Application) -> AsyncIterator[None]:
        # Opened before the database context and closed after it, so webhooks still in flight
        # are drained last.
        app[delivery_key] = make_delivery(
            settings.otp_delivery, webhook_base_delay=webhook_base_delay
        )
        yield
        await app[delivery_key].close()

    async def provider_lifetime(app: web.Application) -> AsyncIterator[None]:
        app[provider_key] = make_provider(settings)
        yield
        await app[provider_key].close()

    app.cleanup_ctx.append(delivery_lifetime)
    app.cleanup_ctx.append(provider_lifetime)
    attach_database(app, settings.database_url_for("users"), STEPS, open_stores)
    r = app.router
    r.add_post("/users", create_user)
    r.add_get("/users", find_user)
    r.add_get("/users/search", search_users)
    r.add_get("/users/{user_id}", get_user)
    r.add_patch("/users/{user_id}", patch_user)
    r.add_post("/auth/verify-registration", verify_registration)
    r.add_post("/auth/login", login)
    r.add_post("/auth/refresh", refresh)
    r.add_post("/auth/logout", logout)
    r.add_post("/auth/introspect", introspect)
    r.add_get("/auth/revocations", revocations)
    r.add_get("/credits/{user_id}/balance", balance)
    r.add_get("/credits/{user_id}/history", history)
    r.add_post("/credits/entries", post_entry)
    # Keys are free text (saga ids, colons, even slashes): match the rest of the path.
    r.add_get("/credits/entries/{idempotency_key:.+}", get_entry)
    r.add_post("/credits/transfer", transfer)
    r.add_post("/otp/challenges", create_challenge)
    r.add_post("/otp/verify", verify_otp)
    r.add_post("/otp/resend", resend_otp)
    r.add_get("/otp/status", otp_status)
    money.add_routes(app)
    return app
