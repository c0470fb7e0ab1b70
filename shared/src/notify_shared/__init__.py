"""Shared core of the notify platform."""
