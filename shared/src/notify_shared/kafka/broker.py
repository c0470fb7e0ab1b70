"""Building the FastStream Kafka broker from the shared settings, security included."""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from notify_shared.settings import ServiceSettings


def _security(settings: ServiceSettings) -> BaseSecurity | None:
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    use_ssl = protocol in ("SSL", "SASL_SSL")
    context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile) if use_ssl else None
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context, use_ssl=True)
    # The settings validator has already insisted on all three SASL settings.
    username = settings.kafka_sasl_username or ""
    password = settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else ""
    mechanisms: dict[str | None, type[SASLPlaintext] | type[SASLScram256] | type[SASLScram512]] = {
        "PLAIN": SASLPlaintext,
        "SCRAM-SHA-256": SASLScram256,
        "SCRAM-SHA-512": SASLScram512,
    }
    return mechanisms[settings.kafka_sasl_mechanism](username, password, ssl_context=context, use_ssl=use_ssl)


def build_broker(settings: ServiceSettings, *, client_id: str, middlewares: Sequence[Any] = ()) -> KafkaBroker:
    """A broker whose producer is idempotent with acks=all, so a status or dead letter is never half-written."""
    return KafkaBroker(
        settings.kafka_bootstrap_servers.split(","),
        client_id=client_id,
        enable_idempotence=True,
        security=_security(settings),
        graceful_timeout=30.0,
        middlewares=middlewares,
    )
