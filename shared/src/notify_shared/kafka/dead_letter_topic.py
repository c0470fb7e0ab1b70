"""Giving the dead-letter topic a retention when a service starts.

Dead letters keep the refused records' original bytes: names, phone numbers, absence reasons. Left to the broker's
defaults (or to an auto-created topic) they could stay for as long as the broker's `log.retention` says, often a
week but sometimes forever. Each service therefore makes sure, at start-up, that the topic exists and that its
`retention.ms` is `DEAD_LETTER_RETENTION`. Every replica does the same, so they agree; the operation is idempotent.

A deployment whose Kafka user may not create topics or alter their configuration gets a WARNING naming the topic
and the value to set by hand, and the service runs on: refusing to start would stop every notification for the
sake of a setting an operator can fix.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from notify_shared.kafka.broker import kafka_client_options
from notify_shared.settings import ServiceSettings

logger = logging.getLogger(__name__)

RETENTION_CONFIG: Final = "retention.ms"
DEAD_LETTER_PARTITIONS: Final = 3
"""Partitions of a dead-letter topic created here: dead letters are few, and ordered only per record anyway."""
_NO_ERROR: Final = 0
_UNKNOWN_TOPIC: Final = 3
_DYNAMIC_TOPIC_CONFIG: Final = 1
"""DescribeConfigs v1's `config_source` of a value set on the topic itself (not inherited from the broker)."""


async def ensure_dead_letter_retention(settings: ServiceSettings) -> bool:
    """Create the dead-letter topic with `retention.ms` = `DEAD_LETTER_RETENTION`, or set that on the existing one.

    Other settings an operator put on the topic are kept. True when the topic has the retention afterwards;
    False (after a WARNING) when Kafka refused.
    """
    topic = settings.topics.dead_letter
    retention_ms = str(int(settings.dead_letter_retention.total_seconds() * 1000))
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers.split(","), **kafka_client_options(settings)
    )
    try:
        await admin.start()
        overrides = await _topic_overrides(admin, topic)
        if overrides is None:
            created = await _create(admin, topic, retention_ms)
            if created:
                logger.info("created %s with a retention of %s ms", topic, retention_ms)
                return True
            overrides = await _topic_overrides(admin, topic) or {}
        if overrides.get(RETENTION_CONFIG) == retention_ms:
            return True
        await _alter(admin, topic, {**overrides, RETENTION_CONFIG: retention_ms})
        logger.info("set the retention of %s to %s ms (DEAD_LETTER_RETENTION)", topic, retention_ms)
        return True
    except KafkaError as error:
        logger.warning(
            "could not set the retention of %s (%s): set retention.ms=%s on it by hand, or let this service's Kafka "
            "user create topics and alter their configuration; dead letters hold personal data",
            topic,
            type(error).__name__,
            retention_ms,
        )
        return False
    finally:
        await admin.close()


async def _topic_overrides(admin: AIOKafkaAdminClient, topic: str) -> dict[str, str] | None:
    """The configuration set on the topic itself, by name; None when the topic does not exist."""
    (response,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    ((error_code, _message, _type, _name, entries),) = response.resources
    if error_code == _UNKNOWN_TOPIC:
        return None
    if error_code != _NO_ERROR:
        raise for_code(error_code)()
    return {name: value for name, value, *rest in entries if _set_on_topic(rest) and value is not None}


def _set_on_topic(rest: list[Any]) -> bool:
    # v0 entries end (read_only, is_default, is_sensitive); v1 and later (read_only, config_source, is_sensitive, …).
    read_only, source_or_default = rest[0], rest[1]
    if read_only:
        return False
    if isinstance(source_or_default, bool):
        return not source_or_default
    return bool(source_or_default == _DYNAMIC_TOPIC_CONFIG)


async def _create(admin: AIOKafkaAdminClient, topic: str, retention_ms: str) -> bool:
    """True when this call created the topic; False when another replica (or the broker) got there first."""
    cluster = await admin.describe_cluster()
    replication = max(1, min(3, len(cluster.get("brokers", []))))
    new_topic = NewTopic(
        topic,
        num_partitions=DEAD_LETTER_PARTITIONS,
        replication_factor=replication,
        topic_configs={RETENTION_CONFIG: retention_ms},
    )
    response = await admin.create_topics([new_topic])
    for _name, error_code, *_ in response.topic_errors:
        if error_code == TopicAlreadyExistsError.errno:
            return False
        if error_code != _NO_ERROR:
            raise for_code(error_code)()
    return True


async def _alter(admin: AIOKafkaAdminClient, topic: str, configs: Mapping[str, str]) -> None:
    # AlterConfigs replaces the topic's whole configuration, hence the overrides already there are sent along.
    for response in await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, dict(configs))]):
        for error_code, *_ in response.resources:
            if error_code != _NO_ERROR:
                raise for_code(error_code)()
