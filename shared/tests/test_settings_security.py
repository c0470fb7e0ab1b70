"""Settings that would put a token, a password or personal data on the wire in clear stop start-up, naming the
variable; what is safe (https, or http to a sink on this machine) starts as before."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from notify_shared.settings import ServiceSettings, describe_settings_error, is_loopback_host


def _refusal(**settings: Any) -> str:
    with pytest.raises(ValidationError) as refused:
        ServiceSettings(**settings)
    return describe_settings_error(refused.value)


@pytest.mark.parametrize(
    ("variable", "settings"),
    [
        ("SMS_WEBHOOK_URL", {"sms_provider": "webhook", "sms_webhook_url": "http://sms-gateway.example.org/send"}),
        (
            "SMS_FALLBACK_WEBHOOK_URL",
            {
                "sms_provider": "webhook",
                "sms_webhook_url": "https://sms-gateway.example.org/send",
                "sms_fallback_provider": "webhook",
                "sms_fallback_webhook_url": "http://10.0.0.7/send",
            },
        ),
        ("TWILIO_BASE_URL", {"twilio_base_url": "http://api.twilio.com"}),
        ("EMAIL_WEBHOOK_URL", {"email_webhook_url": "http://mail-api.example.org/v1/send"}),
    ],
)
def test_a_provider_url_in_clear_to_another_host_stops_start_up_naming_it(
    variable: str, settings: dict[str, Any]
) -> None:
    message = _refusal(**settings)

    assert f"{variable} must be https" in message
    assert "ALLOW_INSECURE_PROVIDER_URLS" in message


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "localhost", "[::1]"])
def test_http_to_a_sink_on_this_machine_is_accepted_for_development_and_tests(host: str) -> None:
    settings = ServiceSettings(
        sms_provider="webhook", sms_webhook_url=f"http://{host}:8025/sms", email_webhook_url=f"http://{host}:9/mail"
    )

    assert settings.sms_webhook_url == f"http://{host}:8025/sms"


def test_allow_insecure_provider_urls_accepts_http_on_a_test_network() -> None:
    settings = ServiceSettings(
        sms_provider="webhook", sms_webhook_url="http://sms-sink:8080/send", allow_insecure_provider_urls=True
    )

    assert settings.sms_webhook_url == "http://sms-sink:8080/send"


@pytest.mark.parametrize("url", ["ftp://sms.example.org/send", "https:///send", "sms.example.org/send"])
def test_a_provider_url_that_is_not_http_at_all_is_refused(url: str) -> None:
    assert "SMS_WEBHOOK_URL must be an https:// URL with a host" in _refusal(
        sms_provider="webhook", sms_webhook_url=url
    )


def test_smtp_without_tls_but_with_a_login_stops_start_up() -> None:
    message = _refusal(
        smtp_host="smtp.example.org", smtp_security="none", smtp_username="notify", smtp_password=SecretStr("pw")
    )

    assert "SMTP_SECURITY=none with SMTP_USERNAME" in message
    assert "pw" not in message.replace("password", "")


def test_smtp_without_tls_and_without_a_login_is_still_the_local_test_server_setup() -> None:
    settings = ServiceSettings(smtp_host="127.0.0.1", smtp_security="none")

    assert settings.smtp_security == "none"


def test_the_outbox_is_named_for_each_channel_without_a_real_provider() -> None:
    assert ServiceSettings().delivers_to_outbox == ["email", "sms"]
    assert ServiceSettings(smtp_host="smtp.example.org").delivers_to_outbox == ["sms"]
    assert (
        ServiceSettings(
            email_webhook_url="https://mail.example.org/send",
            sms_provider="webhook",
            sms_webhook_url="https://sms.example.org/send",
        ).delivers_to_outbox
        == []
    )


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("::1", True), ("LOCALHOST", True), ("10.0.0.1", False), ("localhost.evil.example", False)],
)
def test_only_the_machine_itself_counts_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_the_admin_port_cannot_be_the_public_port() -> None:
    assert "ADMIN_PORT must differ from HTTP_PORT" in _refusal(http_port=8000, admin_port=8000)
