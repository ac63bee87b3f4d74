"""The one typed settings object of a central process: flags, then `TR_*` environment, then defaults.

A bad value stops the start with one line naming the setting (ConfigError)."""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from central.private_files import private_dir

SERVICES = ("orchestrator", "inventory", "users", "orders", "events")
ATOMIC_SERVICES = ("inventory", "users", "orders", "events")
DEFAULT_PORTS = {
    "orchestrator": 8000,
    "inventory": 50051,
    "users": 8101,
    "orders": 8102,
    "events": 8103,
}


class ConfigError(Exception):
    """A setting with a bad value; the message names the setting."""


@dataclass
class Settings:
    data_dir: Path = Path("data")
    host: str = "127.0.0.1"
    port: int | None = None
    service: str | None = None  # None: every service in this process
    database_url: str | None = None
    service_database_urls: dict[str, str] = field(default_factory=dict)
    amqp_url: str | None = None
    hold_ttl: int = 300
    otp_delivery: str = "log"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # where the other services are when they run in their own processes
    users_url: str | None = None
    orders_url: str | None = None
    events_url: str | None = None
    inventory_addr: str | None = None
    internal_token: str | None = None
    jwt_secret: str | None = None
    access_ttl: int = 900
    refresh_ttl: int = 14 * 24 * 3600
    call_timeout: float = 2.0
    sweep_interval: float = 1.0
    saga_lease: float = 15.0
    # Seconds a transfer may wait for both parties' codes before it ends FAILED (TRANSFER_EXPIRED).
    transfer_ttl: int = 900
    # Requests per minute per client address on login/register/OTP (contract: at least 300).
    auth_rate_limit: int = 300
    otp_ttl: int = 300  # seconds a one-time code lives
    otp_send_limit: int = 8  # codes one user may be sent per purpose in 15 minutes
    signing_keys_dir: Path | None = None  # operator-given ticket keys; else made in data_dir
    verify_concurrency: int = 32  # scans in flight before central sheds load with 503
    health_port: int | None = None  # inventory's HTTP /health and /metrics (gRPC has no HTTP)
    amqp_prefix: str = ""
    log_level: str = "INFO"
    seed_sample: bool = False
    # ticket verification: how far in the future a QR token may be issued (gate/phone clock
    # skew), and the deadline of each lookup of the verification fan-out
    token_skew: int = 5
    verify_timeout: float = 1.0
    # Browser origins (scheme://host[:port]) allowed to call the public API from another site;
    # none by default: the attendee app and the console are served from the API's own origin.
    cors_origin: list[str] = field(default_factory=list)
    # Abuse limits: seats one user may hold at once (0: no limit), reserve calls per user a minute.
    max_holds_per_user: int = 4
    reserve_rate_limit: int = 30
    # Seconds a request body may take to arrive; then 408 (a slow client holds nothing for long).
    body_timeout: float = 10.0
    # Who may read the orchestrator's /metrics: comma-separated networks (the API port is public).
    metrics_networks: str = "127.0.0.0/8,::1/128"
    # money in: which payment provider takes card top-ups (demo: central's own checkout page)
    payments: str = "demo"
    stripe_secret_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None  # None: Stripe's own API
    stripe_currency: str = "usd"
    # Orchestrator processes sharing the public port (SO_REUSEPORT); None: one per core.
    workers: int | None = None
    # Which of them this process is (set by `serve` for each worker, not a setting): worker 0
    # alone runs the saga recovery and hold-deadline sweep.
    worker_index: int = 0

    # ----- derived values -----
    def metrics_network_list(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        try:
            return [
                ipaddress.ip_network(part.strip(), strict=False)
                for part in self.metrics_networks.split(",")
                if part.strip()
            ]
        except ValueError as exc:
            raise ConfigError(
                f"--metrics-networks: comma-separated networks like 10.0.0.0/8 ({exc})"
            ) from None

    def worker_count(self) -> int:
        return self.workers if self.workers is not None else max(1, os.cpu_count() or 1)

    def public_port(self) -> int:
        if self.port is not None:
            return self.port
        return DEFAULT_PORTS[self.service or "orchestrator"]

    def database_url_for(self, service: str) -> str:
        from central.db import service_database_url

        return service_database_url(
            service,
            data_dir=self.data_dir,
            database_url=self.database_url,
            override=self.service_database_urls.get(service),
        )

    def secret(self, name: str) -> str:
        """A shared secret from settings, else kept in the data directory (created once, 0600)."""
        given = {"internal_token": self.internal_token, "jwt_secret": self.jwt_secret}.get(name)
        if given:
            return given
        return load_or_create_secret(self.data_dir, name)

    def validate(self) -> Settings:
        if self.service is not None and self.service not in SERVICES:
            raise ConfigError(
                f"--service: must be one of {', '.join(SERVICES)} (got {self.service!r})"
            )
        if self.port is not None and not 0 <= self.port <= 65535:
            raise ConfigError(f"--port: must be 0-65535 (got {self.port})")
        if self.workers is not None and not 1 <= self.workers <= 256:
            raise ConfigError(f"--workers: must be 1-256 (got {self.workers})")
        if self.hold_ttl <= 0:
            raise ConfigError(
                f"--hold-ttl: must be a positive number of seconds (got {self.hold_ttl})"
            )
        if self.signing_keys_dir is not None and not self.signing_keys_dir.is_dir():
            raise ConfigError(f"--signing-keys-dir: no such folder {str(self.signing_keys_dir)!r}")
        if not 1 <= self.verify_concurrency <= 10_000:
            raise ConfigError(
                f"--verify-concurrency: must be 1-10000 (got {self.verify_concurrency})"
            )
        if not 1 <= self.otp_ttl <= 3600:
            raise ConfigError(f"--otp-ttl: must be 1-3600 seconds (got {self.otp_ttl})")
        if not 1 <= self.otp_send_limit <= 100_000:
            raise ConfigError(
                f"--otp-send-limit: must be 1-100000 codes (got {self.otp_send_limit})"
            )
        if self.health_port is not None and not 0 <= self.health_port <= 65535:
            raise ConfigError(f"--health-port: must be 0-65535 (got {self.health_port})")
        if self.auth_rate_limit < 1:
            raise ConfigError(f"--auth-rate-limit: must be at least 1 (got {self.auth_rate_limit})")
        if not 1 <= self.transfer_ttl <= 7 * 24 * 3600:
            raise ConfigError(f"--transfer-ttl: must be 1-604800 seconds (got {self.transfer_ttl})")
        if self.saga_lease <= 0:
            raise ConfigError(f"--saga-lease: must be positive (got {self.saga_lease})")
        if self.sweep_interval <= 0:
            raise ConfigError(f"--sweep-interval: must be positive (got {self.sweep_interval})")
        if self.call_timeout <= 0:
            raise ConfigError(f"TR_CALL_TIMEOUT: must be positive (got {self.call_timeout})")
        if not 0 <= self.token_skew <= 300:
            raise ConfigError(f"TR_TOKEN_SKEW: must be 0-300 seconds (got {self.token_skew})")
        if not 0 < self.verify_timeout <= 30:
            raise ConfigError(
                f"TR_VERIFY_TIMEOUT: must be above 0 and at most 30 seconds (got {self.verify_timeout})"
            )
        if not 0 <= self.max_holds_per_user <= 10_000:
            raise ConfigError(
                f"--max-holds-per-user: must be 0 (no limit) to 10000 (got {self.max_holds_per_user})"
            )
        if not 1 <= self.reserve_rate_limit <= 100_000:
            raise ConfigError(
                f"--reserve-rate-limit: must be 1-100000 a minute (got {self.reserve_rate_limit})"
            )
        if not 0 < self.body_timeout <= 600:
            raise ConfigError(
                f"--body-timeout: must be above 0 and at most 600 s (got {self.body_timeout})"
            )
        self.metrics_network_list()
        check_otp_delivery(self.otp_delivery)
        self.cors_origin = [check_origin(o) for o in self.cors_origin]
        self._check_payments()
        for name, url in (
            ("--database-url", self.database_url),
            *((f"TR_{s.upper()}_DATABASE_URL", u) for s, u in self.service_database_urls.items()),
        ):
            if url and not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
                raise ConfigError(
                    f"{name}: must start with postgresql+asyncpg:// or sqlite+aiosqlite:// (got {url!r})"
                )
        if self.amqp_url and urlparse(self.amqp_url).scheme not in ("amqp", "amqps"):
            raise ConfigError(
                f"--amqp-url: must be an amqp:// or amqps:// URL (got {self.amqp_url!r})"
            )
        for name, url in (
            ("--users-url", self.users_url),
            ("--orders-url", self.orders_url),
            ("--events-url", self.events_url),
        ):
            if url and urlparse(url).scheme not in ("http", "https"):
                raise ConfigError(f"{name}: must be an http(s):// URL (got {url!r})")
        if self.inventory_addr and ":" not in self.inventory_addr:
            raise ConfigError(f"--inventory-addr: must be HOST:PORT (got {self.inventory_addr!r})")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("--tls-cert/--tls-key: give both or neither")
        for name, path in (("--tls-cert", self.tls_cert), ("--tls-key", self.tls_key)):
            if path is not None and not path.is_file():
                raise ConfigError(f"{name}: no such file {str(path)!r}")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(
                f"--log-level: must be DEBUG, INFO, WARNING or ERROR (got {self.log_level!r})"
            )
        return self

    def _check_payments(self) -> None:
        if self.payments not in PAYMENT_PROVIDERS:
            raise ConfigError(
                f"--payments: must be one of {', '.join(PAYMENT_PROVIDERS)} (got {self.payments!r})"
            )
        if self.payments == "stripe":
            if not self.stripe_secret_key:
                raise ConfigError("--stripe-secret-key: required with --payments stripe")
            if not self.stripe_webhook_secret:
                raise ConfigError("--stripe-webhook-secret: required with --payments stripe")
        if self.stripe_api_base and urlparse(self.stripe_api_base).scheme not in ("http", "https"):
            raise ConfigError(
                f"--stripe-api-base: must be an http(s):// URL (got {self.stripe_api_base!r})"
            )
        if not (len(self.stripe_currency) == 3 and self.stripe_currency.isalpha()):
            raise ConfigError(
                f"--stripe-currency: must be a three-letter ISO code (got {self.stripe_currency!r})"
            )


PAYMENT_PROVIDERS = ("demo", "stripe")


def check_otp_delivery(spec: str) -> None:
    if spec == "log":
        return
    if spec.startswith("file:") and len(spec) > len("file:"):
        return
    if spec.startswith("webhook:") and urlparse(spec[len("webhook:") :]).scheme in (
        "http",
        "https",
    ):
        return
    raise ConfigError(f"--otp-delivery: must be log, file:PATH or webhook:URL (got {spec!r})")


def check_origin(origin: str) -> str:
    """An exact browser origin, as browsers send it in the Origin header: scheme://host[:port],
    lower-case, no path. A wildcard is refused: CORS is only for origins the operator names."""
    parsed = urlparse(origin.strip())
    if (
        parsed.scheme not in ("http", "https")
        or not parsed.hostname
        or parsed.path not in ("", "/")
        or parsed.query
        or parsed.fragment
        or parsed.username
        or "*" in origin
    ):
        raise ConfigError(
            f"--cors-origin: must be an origin like https://tickets.example.com (got {origin!r})"
        )
    try:
        port = parsed.port
    except ValueError:
        raise ConfigError(f"--cors-origin: bad port in {origin!r}") from None
    host = parsed.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{parsed.scheme}://{host}" + (f":{port}" if port is not None else "")


def load_or_create_secret(data_dir: Path, name: str) -> str:
    private_dir(data_dir)
    path = data_dir / f"{name}.secret"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    value = secrets.token_urlsafe(32)
    # O_EXCL: when two processes race to create it, the loser reads the winner's value.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


# (setting, flag, env name, type)
_INT = int
_FLOAT = float
# A list setting: its flag may be repeated, its TR_* variable is comma-separated.
_LIST = list


def _parse(kind: type, raw: str, flag: str) -> object:
    try:
        return kind(raw)
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise ConfigError(f"{flag}: must be {noun} (got {raw!r})") from None


ENV_SETTINGS: list[tuple[str, str, type]] = [
    ("data_dir", "--data-dir", Path),
    ("host", "--host", str),
    ("port", "--port", _INT),
    ("service", "--service", str),
    ("database_url", "--database-url", str),
    ("amqp_url", "--amqp-url", str),
    ("hold_ttl", "--hold-ttl", _INT),
    ("otp_delivery", "--otp-delivery", str),
    ("tls_cert", "--tls-cert", Path),
    ("tls_key", "--tls-key", Path),
    ("users_url", "--users-url", str),
    ("orders_url", "--orders-url", str),
    ("events_url", "--events-url", str),
    ("inventory_addr", "--inventory-addr", str),
    ("internal_token", "--internal-token", str),
    ("jwt_secret", "--jwt-secret", str),
    ("access_ttl", "--access-ttl", _INT),
    ("call_timeout", "--call-timeout", _FLOAT),
    ("sweep_interval", "--sweep-interval", _FLOAT),
    ("log_level", "--log-level", str),
    ("saga_lease", "--saga-lease", _FLOAT),
    ("transfer_ttl", "--transfer-ttl", _INT),
    ("auth_rate_limit", "--auth-rate-limit", _INT),
    ("cors_origin", "--cors-origin", _LIST),
    ("otp_ttl", "--otp-ttl", _INT),
    ("otp_send_limit", "--otp-send-limit", _INT),
    ("verify_concurrency", "--verify-concurrency", _INT),
    ("signing_keys_dir", "--signing-keys-dir", Path),
    ("health_port", "--health-port", _INT),
    ("refresh_ttl", "--refresh-ttl", _INT),
    ("amqp_prefix", "--amqp-prefix", str),
    ("token_skew", "--token-skew", _INT),
    ("verify_timeout", "--verify-timeout", _FLOAT),
    ("max_holds_per_user", "--max-holds-per-user", _INT),
    ("reserve_rate_limit", "--reserve-rate-limit", _INT),
    ("body_timeout", "--body-timeout", _FLOAT),
    ("metrics_networks", "--metrics-networks", str),
    ("payments", "--payments", str),
    ("stripe_secret_key", "--stripe-secret-key", str),
    ("stripe_webhook_secret", "--stripe-webhook-secret", str),
    ("stripe_api_base", "--stripe-api-base", str),
    ("stripe_currency", "--stripe-currency", str),
    ("workers", "--workers", _INT),
]


def _list(raw: str | list[str]) -> list[str]:
    parts = raw if isinstance(raw, list) else [raw]
    return [item.strip() for part in parts for item in part.split(",") if item.strip()]


def load_settings(
    flags: dict[str, str | list[str] | None], env: dict[str, str] | None = None
) -> Settings:
    """Build Settings from parsed flags (raw strings; a list for a repeated flag) and the
    environment, then validate."""
    env = dict(os.environ if env is None else env)
    values: dict[str, object] = {}
    for attr, flag, kind in ENV_SETTINGS:
        raw = flags.get(attr)
        source = flag
        if raw is None:
            env_name = "TR_" + attr.upper()
            raw = env.get(env_name)
            source = env_name
        if raw is None or raw == "" or raw == []:
            continue
        if kind is _LIST:
            values[attr] = _list(raw)
            continue
        assert isinstance(raw, str)
        values[attr] = _parse(kind, raw, source) if kind in (_INT, _FLOAT) else kind(raw)
    settings = Settings(**values)  # type: ignore[arg-type]
    for service in SERVICES:
        url = env.get(f"TR_{service.upper()}_DATABASE_URL")
        if url:
            settings.service_database_urls[service] = url
    return settings.validate()
