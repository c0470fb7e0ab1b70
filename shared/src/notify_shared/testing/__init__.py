"""Test helpers shared by every service's tests: real local sinks and Kafka helpers. Not used in production."""
