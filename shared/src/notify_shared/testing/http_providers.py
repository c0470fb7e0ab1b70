"""A provider's HTTP API scripted for channel tests: records every request and answers as told, no network."""

from __future__ import annotations

from collections.abc import Callable

import httpx

Responder = Callable[[httpx.Request], httpx.Response]


class ScriptedProvider:
    """Answers each request with `respond(request)` and keeps the requests, for `transport=` of a channel."""

    def __init__(self, respond: Responder) -> None:
        self.requests: list[httpx.Request] = []
        self._respond = respond

    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return self._respond(request)

        return httpx.MockTransport(handle)


def raising(error: type[httpx.TransportError]) -> Responder:
    """A responder whose request fails on the way, as a timeout or a refused connection would."""

    def respond(request: httpx.Request) -> httpx.Response:
        raise error("simulated", request=request)

    return respond
