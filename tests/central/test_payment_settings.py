"""The payment settings: defaults, flags and TR_* variables, validated at start with a message
naming the flag, and described in `serve --help`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from central.config import ConfigError, load_settings

ROOT = Path(__file__).resolve().parent.parent.parent


def test_demo_is_the_default() -> None:
    settings = load_settings({}, env={})
    assert settings.payments == "demo" and settings.stripe_api_base is None


def test_stripe_from_the_environment() -> None:
    settings = load_settings(
        {},
        env={
            "TR_PAYMENTS": "stripe",
            "TR_STRIPE_SECRET_KEY": "sk_test_1",
            "TR_STRIPE_WEBHOOK_SECRET": "whsec_1",
            "TR_STRIPE_API_BASE": "http://127.0.0.1:12111",
        },
    )
    assert (settings.payments, settings.stripe_secret_key) == ("stripe", "sk_test_1")
    assert settings.stripe_api_base == "http://127.0.0.1:12111"


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        ({"payments": "paypal"}, "--payments"),
        ({"payments": "stripe", "stripe_webhook_secret": "whsec_1"}, "--stripe-secret-key"),
        ({"payments": "stripe", "stripe_secret_key": "sk_1"}, "--stripe-webhook-secret"),
        ({"stripe_api_base": "ftp://x"}, "--stripe-api-base"),
        ({"stripe_currency": "euro"}, "--stripe-currency"),
    ],
)
def test_bad_payment_settings_name_the_flag(flags: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(dict(flags), env={})  # type: ignore[arg-type]
    assert str(err.value).startswith(named)


def test_serve_help_describes_the_payment_flags() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "central", "serve", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    text = " ".join(done.stdout.split())
    for flag in (
        "--payments",
        "--stripe-secret-key",
        "--stripe-webhook-secret",
        "--stripe-api-base",
    ):
        assert flag in text
    assert "TR_STRIPE_WEBHOOK_SECRET" in text and "demo" in text
