"""`ai-router balance` reads prepaid balances from the providers that expose them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ai_router.balance import Balance, fetch_balances, usd_balances_micro
from ai_router.config import Keys, load_config
from ai_router.schema import ChatRequest
from upstreams.server import serve

SHIPPED = Path(__file__).parents[1] / "models.toml"
KEYS = {"DEEPSEEK_API_KEY": "sk-test-PLANTED-ds", "MOONSHOT_API_KEY": "sk-test-PLANTED-ms",
        "OPENROUTER_API_KEY": "sk-or-test-PLANTED-or"}
seen_auth: list[str] = []


async def deepseek(request: Request) -> JSONResponse:  # documented shape of GET /user/balance
    seen_auth.append(request.headers["authorization"])
    return JSONResponse({"is_available": True, "balance_infos": [
        {"currency": "USD", "total_balance": "8.50", "granted_balance": "0.00",
         "topped_up_balance": "8.50"}]})


async def moonshot(request: Request) -> JSONResponse:  # GET /v1/users/me/balance
    return JSONResponse({"code": 0, "data": {"available_balance": 49.58894,
                                             "voucher_balance": 46.58893,
                                             "cash_balance": 3.00001},
                         "scode": "0x0", "status": True})


async def openrouter(request: Request) -> JSONResponse:  # GET /api/v1/key
    return JSONResponse({"data": {"label": "sk-or-v1-abc", "limit": 20, "usage": 3.5,
                                  "limit_remaining": 16.5, "is_free_tier": False}})


APP = Starlette(routes=[Route("/user/balance", deepseek), Route("/v1/users/me/balance", moonshot),
                        Route("/api/v1/key", openrouter)])


@pytest.fixture(scope="module")
def base():
    with serve(APP) as url:
        yield url


def config_at(tmp_path: Path, base: str) -> Path:
    text = SHIPPED.read_text()
    for old in ("https://api.deepseek.com", "https://api.moonshot.ai", "https://openrouter.ai"):
        text = text.replace(old, base)
    path = tmp_path / "models.toml"
    path.write_text(text)
    return path


async def test_balances_are_read_from_each_documented_response(base, tmp_path):
    config = load_config(config_at(tmp_path, base))
    found = {b.provider: b for b in await fetch_balances(config, Keys(KEYS))}
    assert found["deepseek"] == Balance("deepseek", 8.5, "USD", "")
    assert found["moonshot"].amount == pytest.approx(49.58894)
    assert found["moonshot"].currency == "CNY"
    assert found["openrouter"].amount == 16.5
    assert seen_auth[-1] == f"Bearer {KEYS['DEEPSEEK_API_KEY']}"
    assert usd_balances_micro(list(found.values())) == {"deepseek": 8_500_000,
                                                        "openrouter": 16_500_000}


async def test_providers_without_a_key_are_not_asked(base, tmp_path):
    config = load_config(config_at(tmp_path, base))
    found = await fetch_balances(config, Keys({"OPENROUTER_API_KEY": "k"}))
    assert [b.provider for b in found] == ["openrouter"]


async def test_an_unreachable_balance_api_is_reported_not_raised(tmp_path):
    config = load_config(config_at(tmp_path, "http://127.0.0.1:9"))
    found = await fetch_balances(config, Keys(KEYS), timeout_s=2)
    assert all(isinstance(b, tuple) and "unreachable" in b[1] for b in found)


def test_the_balance_command_shows_every_balance_and_no_key(base, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **KEYS}
    done = subprocess.run([str(Path(sys.executable).with_name("ai-router")), "balance",
                           "--config", str(config_at(tmp_path, base))],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "8.50" in done.stdout and "16.50" in done.stdout and "49.59" in done.stdout
    assert "PLANTED" not in done.stdout + done.stderr


async def low_balance(request: Request) -> JSONResponse:
    return JSONResponse({"is_available": True, "balance_infos": [
        {"currency": "USD", "total_balance": "0.0001", "granted_balance": "0.00",
         "topped_up_balance": "0.0001"}]})


async def test_with_cap_to_prepaid_a_nearly_empty_account_is_not_planned(tmp_path, monkeypatch):
    from ai_router.router import Router

    with serve(Starlette(routes=[Route("/user/balance", low_balance)])) as url:
        text = config_at(tmp_path, url).read_text()
        text = text.replace("cap_to_prepaid = false", "cap_to_prepaid = true")
        text = text.replace('endpoint = "http://localhost:11434"',
                            'endpoint = "http://127.0.0.1:9"\nembedded_fallback = false', 1)
        text = text.replace("embedded_fallback = true\n", "")
        (tmp_path / "models.toml").write_text(text)
        monkeypatch.setenv("DEEPSEEK_API_KEY", KEYS["DEEPSEEK_API_KEY"])
        monkeypatch.setenv("AI_ROUTER_DB", str(tmp_path / "ledger.db"))
        router = Router.from_config(load_config(tmp_path / "models.toml"))
        try:
            _, _, the_plan = await router.prepare(
                ChatRequest.from_prompt("hi", model="deepseek/deepseek-chat"))
        finally:
            await router.aclose()
    assert router.balances_micro == {"deepseek": 100}
    assert "deepseek/deepseek-chat" not in [c.model.ref for c in the_plan.candidates]
    assert any("deepseek/deepseek-chat" in o for o in the_plan.overrides)
