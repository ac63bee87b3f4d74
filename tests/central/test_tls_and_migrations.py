"""HTTPS with --tls-cert/--tls-key, and versioned migrations applied once, in order, at start."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import aiohttp
import sqlalchemy as sa
from cluster import running_cluster
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from central.db import Step, make_engine, migrate


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_the_public_api_serves_https(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    async with running_cluster(tmp_path, tls_cert=cert, tls_key=key) as c:
        https = c.url.replace("http://", "https://")
        trusted = ssl.create_default_context(cafile=str(cert))
        async with aiohttp.ClientSession() as session:
            async with session.get(https + "/api/events", ssl=trusted) as resp:
                assert resp.status == 200
                assert (await resp.json())["success"] is True
            try:
                async with session.get(c.url + "/api/events") as resp:
                    plain = resp.status
            except aiohttp.ClientError:
                plain = None
            assert plain != 200  # plain HTTP is not served on the TLS port


async def test_migrations_apply_once_and_in_order(db_url: str) -> None:
    applied: list[int] = []

    def step(version: int) -> Step:
        async def apply(conn) -> None:  # type: ignore[no-untyped-def]
            applied.append(version)
            await conn.execute(sa.text(f"CREATE TABLE t{version} (id INTEGER PRIMARY KEY)"))

        return Step(version, f"table {version}", apply)

    engine = await make_engine(db_url)
    try:
        assert await migrate(engine, [step(1), step(2)]) == 2
        assert await migrate(engine, [step(1), step(2)]) == 2  # a restart applies nothing again
        assert await migrate(engine, [step(1), step(2), step(3)]) == 3  # a new version applies
        assert applied == [1, 2, 3]
        async with engine.connect() as conn:
            versions = (
                (
                    await conn.execute(
                        sa.text("SELECT version FROM schema_migrations ORDER BY version")
                    )
                )
                .scalars()
                .all()
            )
        assert list(versions) == [1, 2, 3]
    finally:
        await engine.dispose()


async def test_operator_given_signing_keys_are_used_and_none_are_made(tmp_path: Path) -> None:
    from central.signing import KeyRing

    operator = KeyRing.load_or_create(tmp_path / "vault")  # stands in for the operator's key store
    key_dir = tmp_path / "vault" / "signing_keys"
    async with running_cluster(tmp_path, signing_keys_dir=key_dir) as c:
        assert c.runtime().keyring.public_keys_json() == operator.public_keys_json()
        assert not (c.settings.data_dir / "signing_keys").exists()
