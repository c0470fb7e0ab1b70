"""The ingest service: an HTTP endpoint where school admin systems that cannot speak Kafka post CloudEvents.

`notify-ingest` starts it; docs/ingest.md is the guide for integrators.
"""
