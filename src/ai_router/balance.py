"""Prepaid balances, where a provider exposes them (`ai-router balance`).

Each balance API is a row in a registry: where it lives relative to the provider's
base URL, and how to read its documented response body.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from .config import Config, Keys


@dataclass(frozen=True)
class Balance:
    provider: str
    amount: float | None  # None: unlimited (e.g. an OpenRouter key with no limit)
    currency: str
    detail: str = ""


def _deepseek(provider: str, body: dict[str, Any]) -> Balance:
    # {"is_available": true, "balance_infos": [{"currency": "USD", "total_balance": "8.50",
    #   "granted_balance": "0.00", "topped_up_balance": "8.50"}]}
    infos = body.get("balance_infos") or [{}]
    usd = next((i for i in infos if i.get("currency") == "USD"), infos[0])
    return Balance(provider, float(usd.get("total_balance", 0)), usd.get("currency", "?"),
                   "" if body.get("is_available", True) else "account not available")


def _moonshot(provider: str, body: dict[str, Any]) -> Balance:
    # {"code": 0, "data": {"available_balance": 49.58, "voucher_balance": 46.58,
    #   "cash_balance": 3.0}, "scode": "0x0", "status": true}
    data = body["data"]
    return Balance(provider, float(data["available_balance"]), "CNY",
                   f"cash {data.get('cash_balance')}, voucher {data.get('voucher_balance')}")


def _openrouter(provider: str, body: dict[str, Any]) -> Balance:
    # {"data": {"label": "…", "limit": 20, "usage": 3.5, "limit_remaining": 16.5, …}}
    data = body["data"]
    remaining = data.get("limit_remaining")
    return Balance(provider, None if remaining is None else float(remaining), "USD",
                   f"used {data.get('usage', 0)} of limit {data.get('limit')}")


BALANCE_APIS: dict[str, tuple[Callable[[str], str], Callable[[str, dict[str, Any]], Balance]]] = {
    # balance_api → (URL from the provider's base_url, parser)
    "deepseek": (lambda base: base.removesuffix("/v1") + "/user/balance", _deepseek),
    "moonshot": (lambda base: base + "/users/me/balance", _moonshot),
    "openrouter": (lambda base: base + "/key", _openrouter),
}


async def fetch_balances(config: Config, keys: Keys, timeout_s: float = 10.0
                         ) -> list[Balance | tuple[str, str]]:
    """Balance per provider that has a balance API and a key; (provider, error) on failure."""
    async def one(client: httpx.AsyncClient, name: str) -> Balance | tuple[str, str]:
        p = config.providers[name]
        url_of, parse = BALANCE_APIS[p.balance_api]  # type: ignore[index]
        try:
            r = await client.get(url_of((p.base_url or "").rstrip("/")),
                                 headers={"Authorization": f"Bearer {keys.get(p.key_env)}"})
            r.raise_for_status()
            return parse(name, r.json())
        except httpx.HTTPStatusError as e:
            return name, f"HTTP {e.response.status_code}"
        except httpx.HTTPError as e:
            return name, f"unreachable ({type(e).__name__})"
        except (KeyError, TypeError, ValueError):
            return name, "unexpected response body"

    names = [n for n, p in config.providers.items() if p.balance_api and keys.get(p.key_env)]
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        return list(await asyncio.gather(*(one(client, n) for n in names)))


def usd_balances_micro(balances: list[Balance | tuple[str, str]]) -> dict[str, int]:
    """Prepaid USD left per provider, in micro-USD, for the guard (other currencies and
    unlimited keys impose no cap)."""
    return {b.provider: round(b.amount * 1_000_000) for b in balances
            if isinstance(b, Balance) and b.currency == "USD" and b.amount is not None}


# -- the command (cli.main imports this module through COMMAND_MODULES) -----------------
from .cli import ConfigOpt, app, clean_errors, out  # noqa: E402  (cli imports us lazily)


@app.command()
@clean_errors
def balance(config: ConfigOpt = None) -> None:
    """Prepaid balances at providers that expose them (DeepSeek, Moonshot, OpenRouter)."""
    from rich.table import Table

    from .config import load_config

    found = asyncio.run(fetch_balances(load_config(config), Keys.load()))
    if not found:
        out.print("no provider with a balance API has a key set (DeepSeek, Moonshot, OpenRouter)")
        return
    table = Table("provider", "balance", "currency", "detail")
    for b in found:
        if isinstance(b, Balance):
            table.add_row(b.provider, "unlimited" if b.amount is None else f"{b.amount:.2f}",
                          b.currency, b.detail)
        else:
            table.add_row(b[0], "[red]unknown[/red]", "", b[1])
    out.print(table)
