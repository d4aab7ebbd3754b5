"""Where the manager model runs: Ollama when it is up and has the model, else embedded.

Probing Ollama costs a round trip, so the choice is cached for a while and dropped as
soon as a call to the chosen endpoint fails.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Literal

from .. import local_model
from ..config import ManagerConfig

EndpointKind = Literal["ollama", "embedded", "openai"]
EMBEDDED = "embedded"


class NoEndpoint(Exception):
    """No local model is reachable; the message says why."""


@dataclass(frozen=True)
class Endpoint:
    kind: EndpointKind
    base_url: str  # OpenAI-compatible, ending in /v1
    model: str

    @property
    def label(self) -> str:
        return f"{self.kind}/{self.model}"


FAILURE_TTL_S = 10.0  # a failed probe is believed this long: probing costs ~50 ms


class EndpointChooser:
    def __init__(self, config: ManagerConfig, ttl_s: float = 60.0):
        self.config = config
        self.ttl_s = ttl_s
        self._chosen: Endpoint | NoEndpoint | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> Endpoint:
        async with self._lock:  # one probe at a time; the others reuse its answer
            if self._chosen is None or time.monotonic() >= self._expires:
                try:
                    self._chosen, ttl = await self._choose(), self.ttl_s
                except NoEndpoint as e:  # remembered too: no probe per request while down
                    self._chosen, ttl = e, FAILURE_TTL_S
                self._expires = time.monotonic() + ttl
        if isinstance(self._chosen, NoEndpoint):
            raise self._chosen
        return self._chosen

    def forget(self) -> None:
        """The chosen endpoint failed: probe again next time."""
        self._chosen = None

    async def _choose(self) -> Endpoint:
        endpoint = self.config.endpoint.rstrip("/")
        if endpoint == EMBEDDED:
            return await _embedded()
        if endpoint.endswith("/v1"):  # any OpenAI-compatible server (LM Studio, llama.cpp)
            return Endpoint("openai", endpoint, self.config.model)
        status = await local_model.ollama_status(endpoint, self.config.model)
        if status == "ready":
            return Endpoint("ollama", f"{endpoint}/v1", self.config.model)
        why = (f"Ollama at {endpoint} does not have {self.config.model} "
               f"(run: ollama pull {self.config.model})" if status == "missing"
               else f"Ollama at {endpoint} is not answering")
        if not self.config.embedded_fallback:
            raise NoEndpoint(why)
        return await _embedded()


async def _embedded() -> Endpoint:
    try:
        base_url = await local_model.embedded_base_url()
    except local_model.EmbeddedModelUnavailable as e:
        raise NoEndpoint(str(e)) from e
    return Endpoint("embedded", base_url, local_model.EMBEDDED_MODEL_NAME)
