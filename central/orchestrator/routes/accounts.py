"""Accounts: register, verify, login, refresh, logout, OTP resend, credit balance."""

from __future__ import annotations

from aiohttp import web

from central.errors import ApiError
from central.orchestrator.answer_models import (
    Balance,
    LoggedIn,
    LoggedOut,
    OtpResent,
    Refreshed,
    Registered,
    Verified,
)
from central.orchestrator.answers import answers
from central.orchestrator.auth import (
    access_tokens_key,
    authenticate,
    bearer_token,
    client_address,
)
from central.orchestrator.keys import backends_key, login_limiter_key
from central.orchestrator.schemas import (
    LoginBody,
    OtpResendBody,
    RegisterBody,
    VerifyRegistrationBody,
)
from central.web import parse_body

routes = web.RouteTableDef()

# Password hashing is deliberately slow (Argon2id); under a burst of logins it queues for the CPU.
SLOW_HASH_TIMEOUT = 15.0


def _limit(request: web.Request, bucket: str) -> None:
    request.app[login_limiter_key].check(bucket, client_address(request))


@routes.post("/api/auth/register")
@answers(Registered, 201)
async def register(request: web.Request) -> Registered:
    _limit(request, "register")
    body = await parse_body(request, RegisterBody)
    user = await request.app[backends_key].users.create_user(
        body.email, body.password, body.phone, timeout=SLOW_HASH_TIMEOUT
    )
    return Registered(
        user_id=user["user_id"],
        email=user["email"],
        status="PENDING_VERIFICATION",
        message="a verification code was sent",
    )


@routes.post("/api/auth/verify-registration")
@answers(Verified)
async def verify_registration(request: web.Request) -> Verified:
    _limit(request, "verify")
    body = await parse_body(request, VerifyRegistrationBody)
    data = await request.app[backends_key].users.verify_registration(
        str(body.user_id), body.otp_code
    )
    return Verified.model_validate(data)


@routes.post("/api/auth/login")
@answers(LoggedIn)
async def login(request: web.Request) -> LoggedIn:
    _limit(request, "login")
    body = await parse_body(request, LoginBody)
    data = await request.app[backends_key].users.login(
        body.email, body.password, timeout=SLOW_HASH_TIMEOUT
    )
    return LoggedIn.model_validate(data)


@routes.post("/api/auth/refresh")
@answers(Refreshed)
async def refresh(request: web.Request) -> Refreshed:
    token = bearer_token(request)
    data = await request.app[backends_key].users.refresh(token)
    return Refreshed.model_validate(data)


@routes.post("/api/auth/logout")
@answers(LoggedOut)
async def logout(request: web.Request) -> LoggedOut:
    backends = request.app[backends_key]
    await authenticate(request, backends)
    await backends.users.logout(bearer_token(request))
    tokens = request.app.get(access_tokens_key)
    if tokens is not None:
        await tokens.catch_up()  # this process knows at once; the others within their next poll
    return LoggedOut(logged_out=True)


@routes.post("/api/otp/resend")
@answers(OtpResent)
async def otp_resend(request: web.Request) -> OtpResent:
    backends = request.app[backends_key]
    # Registration happens before there is a token; the other contexts belong to a signed-in user.
    user_id: str | None = None
    if request.headers.get("Authorization"):
        user_id = (await authenticate(request, backends)).user_id
    _limit(request, "otp")
    body = await parse_body(request, OtpResendBody)
    reference = str(body.reference_id)
    if body.context == "registration":
        user_id = reference
    elif user_id is None:
        raise ApiError("UNAUTHORIZED", "a bearer token is required")
    data = await backends.users.resend_otp(user_id, body.context, reference)
    return OtpResent.model_validate(data)


@routes.get("/api/credits/balance")
@answers(Balance)
async def balance(request: web.Request) -> Balance:
    backends = request.app[backends_key]
    principal = await authenticate(request, backends)
    credit_balance = await backends.users.balance(principal.user_id)
    return Balance(user_id=principal.user_id, credit_balance=credit_balance)
