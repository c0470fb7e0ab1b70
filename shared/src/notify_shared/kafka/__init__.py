"""Kafka plumbing shared by the services: broker, inbound decoding with dead letters, outbound events."""

from notify_shared.kafka.broker import build_broker, kafka_client_options
from notify_shared.kafka.dead_letters import dead_letter_for
from notify_shared.kafka.event_time import EventTimeLimit
from notify_shared.kafka.inbound import cloudevent_decoder, decode_for_topic
from notify_shared.kafka.outbound import KafkaDeadLetterSink, KafkaStatusSink, publish_event

__all__ = [
    "EventTimeLimit",
    "KafkaDeadLetterSink",
    "KafkaStatusSink",
    "build_broker",
    "cloudevent_decoder",
    "dead_letter_for",
    "decode_for_topic",
    "kafka_client_options",
    "publish_event",
]
