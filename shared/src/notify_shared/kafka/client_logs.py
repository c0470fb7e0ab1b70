"""aiokafka's log levels, corrected for the conditions it meets on every healthy start and then retries itself.

aiokafka logs at ERROR when the group coordinator is not known yet (the broker is still loading or creating its
offsets topic when the first consumer of a group starts), when a topic is not in the metadata yet (the first
record to a topic the broker creates on first use) and when a partition just created has no leader yet. These
clear up within a second as aiokafka retries; if one never does, the send or the group join fails on its own and
that failure is reported. An operator who sees ERROR at every start learns to ignore ERROR, so an aiokafka error
that carries a retriable Kafka error, and the missing topic, are logged at WARNING instead. Every other aiokafka
error keeps its level.
"""

from __future__ import annotations

import logging

from aiokafka.errors import KafkaError

_TOPIC_NOT_YET_IN_METADATA = "Topic %s not found in cluster metadata"


class _TransientClientErrorsAsWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR and _is_transient(record):
            record.levelno = logging.WARNING
            record.levelname = logging.getLevelName(logging.WARNING)
        return True


def _is_transient(record: logging.LogRecord) -> bool:
    if record.msg == _TOPIC_NOT_YET_IN_METADATA:
        return True
    # Retriable: GroupCoordinatorNotAvailable, CoordinatorLoadInProgress, NotLeaderForPartition, a connection lost
    # mid-request. An authorisation failure or a corrupt record is not, and stays an ERROR.
    arguments = record.args if isinstance(record.args, tuple) else ()
    return any(isinstance(argument, KafkaError) and argument.retriable for argument in arguments)


_FILTER = _TransientClientErrorsAsWarnings()
# A filter on a logger sees only the records logged on that very logger, not its children's.
_LOGGERS = ("aiokafka.cluster", "aiokafka.consumer.group_coordinator", "aiokafka.consumer.fetcher")


def log_transient_kafka_client_errors_as_warnings() -> None:
    """Install the correction on aiokafka's loggers; calling it again changes nothing."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
