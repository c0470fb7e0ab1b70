"""Building the FastStream Kafka broker, and plain aiokafka clients, from the shared settings, security included.

Every Kafka client of the platform is built from `KAFKA_SECURITY_PROTOCOL` and its companions: the broker through
`build_broker`, and the aiokafka producers, consumers and admin clients of the `notify` command and the test
helpers through `kafka_client_options`. A client built without them would speak PLAINTEXT to a SASL_SSL listener
and fail with nothing but a timeout.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from notify_shared.kafka.client_logs import log_transient_kafka_client_errors_as_warnings
from notify_shared.kafka.inbound import parse_record_leniently
from notify_shared.settings import ServiceSettings


def _ssl_context(settings: ServiceSettings) -> ssl.SSLContext:
    # Verifies the broker's certificate and host name, against KAFKA_SSL_CAFILE or else the system's CAs.
    return ssl.create_default_context(cafile=settings.kafka_ssl_cafile)


def _security(settings: ServiceSettings) -> BaseSecurity | None:
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    use_ssl = protocol in ("SSL", "SASL_SSL")
    context = _ssl_context(settings) if use_ssl else None
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
    """A broker whose producer waits for every in-sync replica (acks=all), so what it publishes is not lost.

    Not idempotent: aiokafka's idempotent producer can lose its sequence numbers when the brokers are away for
    longer than its request timeout, and then refuses every record with OutOfOrderSequenceNumber until the
    process restarts (aio-libs/aiokafka#1017; our `broker-away` fault scenario hit it). What this producer
    publishes is read at least once anyway: status events are keyed by notification and status, dead letters
    replay idempotently, and every consumer deduplicates events by id. A retried produce may repeat a record;
    it will not wedge the service.
    """
    log_transient_kafka_client_errors_as_warnings()
    return KafkaBroker(
        settings.kafka_bootstrap_servers.split(","),
        client_id=client_id,
        enable_idempotence=False,
        acks="all",
        security=_security(settings),
        graceful_timeout=30.0,
        middlewares=middlewares,
        # FastStream's own parser raises on a header value that is not UTF-8 before our decoder sees the record,
        # which would skip it without a dead letter; this one lets the decoder judge the original bytes.
        parser=parse_record_leniently,
    )


def kafka_client_options(settings: ServiceSettings) -> dict[str, Any]:
    """Keyword arguments that give an aiokafka client (`AIOKafkaProducer`, `AIOKafkaConsumer`,
    `AIOKafkaAdminClient`) the same security as `build_broker`: protocol, TLS context and SASL login.

    Empty for PLAINTEXT, so `AIOKafkaProducer(bootstrap_servers=..., **kafka_client_options(settings))` behaves
    as before there. The password is in the result: never log it.
    """
    log_transient_kafka_client_errors_as_warnings()
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = _ssl_context(settings)
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        # The settings validator has already insisted on all three SASL settings.
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = (
            settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else None
        )
    return options
