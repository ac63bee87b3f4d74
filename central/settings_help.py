"""One line of help per central setting, for `--help`: what it does; the default and the `TR_*`
variable are added from the settings themselves, so they cannot drift from the code."""

from __future__ import annotations

from dataclasses import MISSING, fields

from central.config import Settings

SETTING_HELP: dict[str, str] = {
    "cors_origin": "allow cross-origin browser calls from this origin, e.g. "
    "https://tickets.example.com (repeatable; the variable takes a comma-separated list)",
    "max_holds_per_user": "seats one user may hold unpaid at once; a reserve past it answers "
    "HOLD_LIMIT_REACHED 409 (0: no limit)",
    "reserve_rate_limit": "POST /api/reserve calls per user a minute, over every orchestrator "
    "replica; past it RATE_LIMITED 429",
    "body_timeout": "seconds a request body may take to arrive before the answer is "
    "REQUEST_TIMEOUT 408",
    "metrics_networks": "comma-separated networks that may read the orchestrator's /metrics; "
    "others get 403",
    "payments": "payment provider for card top-ups: demo (central's own checkout page) or stripe",
    "stripe_secret_key": "Stripe secret API key, with --payments stripe",
    "stripe_webhook_secret": "Stripe webhook signing secret (whsec_...), with --payments stripe",
    "stripe_api_base": "base URL of the Stripe API (unset: Stripe's own; tests point it at a "
    "local stand-in)",
    "stripe_currency": "currency of Stripe Checkout; one credit costs one unit of it",
    "data_dir": "directory of the SQLite files, shared secrets and signing keys",
    "host": "address to listen on",
    "port": "public port (unset: 8000 for the orchestrator, 8101-8103 and 50051 for a "
    "service run alone)",
    "service": "run one service alone: inventory, users, orders, events or orchestrator "
    "(unset: all in this process)",
    "database_url": "postgresql+asyncpg://USER@HOST/PREFIX: each service gets the database "
    "PREFIX_<service> (unset: SQLite files in the data directory)",
    "amqp_url": "RabbitMQ for hold expiry (unset: an in-process sweeper)",
    "hold_ttl": "seconds a seat stays held before payment",
    "otp_delivery": "where one-time codes go: log (a log line 'OTP for …'), file:PATH "
    "(one JSON line each) or webhook:URL",
    "tls_cert": "PEM certificate: serve HTTPS (with --tls-key)",
    "tls_key": "PEM private key of --tls-cert",
    "users_url": "orchestrator alone: the users service's URL",
    "orders_url": "orchestrator alone: the orders service's URL",
    "events_url": "orchestrator alone: the events service's URL",
    "inventory_addr": "orchestrator alone: the inventory service's gRPC HOST:PORT",
    "internal_token": "secret the services show each other (unset: kept in the data directory)",
    "jwt_secret": "secret signing access tokens; the orchestrator checks them with it too "
    "(unset: kept in the data directory)",
    "access_ttl": "seconds an access token lives",
    "call_timeout": "seconds per internal call",
    "sweep_interval": "seconds between sweeps for expired holds and transfers",
    "log_level": "DEBUG, INFO, WARNING or ERROR",
    "saga_lease": "seconds a replica may drive a saga before another takes it over",
    "transfer_ttl": "seconds a transfer waits for both parties' codes",
    "auth_rate_limit": "requests per minute per address on login, register and OTP",
    "otp_ttl": "seconds a one-time code lives",
    "otp_send_limit": "codes one user may be sent for one purpose in 15 minutes; past it "
    "RATE_LIMITED with retry_after_s",
    "verify_concurrency": "scans in flight before central answers 503 (the gate decides offline)",
    "signing_keys_dir": "directory of the ticket signing keys (unset: in the data directory)",
    "health_port": "inventory alone: port of its HTTP /health and /metrics (unset: 8104)",
    "refresh_ttl": "seconds a refresh token lives",
    "amqp_prefix": "prefix of the RabbitMQ queue and exchange names",
    "token_skew": "seconds a ticket code may be issued in the future (clock skew)",
    "verify_timeout": "seconds per lookup while verifying a scan",
    "workers": "orchestrator processes sharing the public port (SO_REUSEPORT); unset: one per "
    "CPU core",
}


def _defaults() -> dict[str, object]:
    out: dict[str, object] = {}
    for f in fields(Settings):
        if f.default is not MISSING:
            out[f.name] = f.default
    return out


def flag_help(attr: str) -> str:
    """`what it does (default: D; env TR_NAME)`; a setting without a default says so itself."""
    default = _defaults().get(attr)
    env = "TR_" + attr.upper()
    shown = "" if default in (None, "") else f"default: {default}; "
    return f"{SETTING_HELP.get(attr, '')} ({shown}env {env})".strip()
