"""The `embedded` kind: llama.cpp in-process (xllamacpp) serving the GGUF shipped on PyPI.

It speaks OpenAI's dialect, so this is the OpenAI-compatible adapter with a base URL
that exists only once the embedded server has started.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from .. import local_model
from ..errors import Unavailable
from ..schema import ChatRequest, Completion, Delta
from .openai_compat import OpenAICompatAdapter


class EmbeddedAdapter(OpenAICompatAdapter):
    kind = "embedded"

    async def _started(self) -> None:
        if self._client is None:
            try:
                base_url = await local_model.embedded_base_url()
            except local_model.EmbeddedModelUnavailable as e:
                raise Unavailable(self.name, str(e)) from e
            self.config = self.config.model_copy(update={"base_url": base_url})

    async def complete(self, request: ChatRequest, model: str, max_tokens: int) -> Completion:
        await self._started()
        return await super().complete(request, model, max_tokens)

    async def stream(self, request: ChatRequest, model: str,
                     max_tokens: int) -> AsyncIterator[Delta]:
        await self._started()
        async for delta in super().stream(request, model, max_tokens):
            yield delta
