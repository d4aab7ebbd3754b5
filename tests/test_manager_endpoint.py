"""Choosing where the manager runs costs a probe; a failed probe is believed for a while."""

from __future__ import annotations

import pytest

from ai_router import local_model
from ai_router.config import ManagerConfig
from ai_router.manager import endpoint as endpoint_module
from ai_router.manager.endpoint import EndpointChooser, NoEndpoint


async def test_a_down_ollama_is_probed_once_not_on_every_request(monkeypatch):
    probes = []

    async def status(endpoint, model):
        probes.append(endpoint)
        return await original(endpoint, model)

    original = local_model.ollama_status
    monkeypatch.setattr(local_model, "ollama_status", status)
    chooser = EndpointChooser(ManagerConfig(endpoint="http://127.0.0.1:9",
                                            embedded_fallback=False))
    for _ in range(3):
        with pytest.raises(NoEndpoint, match="not answering"):
            await chooser.get()
    assert len(probes) == 1

    monkeypatch.setattr(endpoint_module, "FAILURE_TTL_S", 0.0)
    chooser._expires = 0.0  # the remembered failure has run out
    with pytest.raises(NoEndpoint):
        await chooser.get()
    assert len(probes) == 2
