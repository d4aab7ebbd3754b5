"""The router's small error tree. Messages say how to fix the problem."""

from __future__ import annotations


class RouterError(Exception):
    """Base of every error ai-router raises on purpose."""


class ConfigError(RouterError):
    """models.toml (or another config file) is malformed: names the file and the field."""


class BudgetExhausted(RouterError):
    """No candidate fits in what is left of today's budget."""


class NoRoute(RouterError):
    """No configured model can serve this request (features, context, keys, health).
    `attempts` lists each candidate that was tried and why it failed."""

    def __init__(self, message: str, attempts: list[str] | None = None):
        self.attempts = list(attempts or [])
        super().__init__(message)


class UnknownModel(RouterError):
    def __init__(self, name: str, valid: list[str]):
        self.name, self.valid = name, valid
        super().__init__(f"unknown model {name!r}; valid models: {', '.join(valid)}")


class Unpriced(RouterError):
    """A paid model with no known price: refused, never treated as free."""

    def __init__(self, model_ref: str):
        self.model_ref = model_ref
        super().__init__(
            f"no price is known for paid model {model_ref!r}; add "
            f"[models.{model_ref!r}.price] with input/output USD per million tokens to models.toml"
        )


class MissingKey(RouterError):
    def __init__(self, provider: str, env_var: str):
        self.provider, self.env_var = provider, env_var
        super().__init__(
            f"no API key for {provider}: set {env_var} in the environment or in a .env file"
        )


class LedgerError(RouterError):
    """The budget ledger cannot be read or written (disk full, read-only, corrupt)."""


class ProviderError(RouterError):
    """A provider call failed. `retryable` failures let the router try the next candidate.
    `maybe_billed`: the request may have reached the provider, which may bill it, but no
    answer came back (a read timeout, a stream cut mid-way, a reply too malformed to read
    its usage); the router then keeps the whole reservation as spent instead of releasing
    it."""

    retryable = False
    maybe_billed = False

    def __init__(self, provider: str, message: str, status: int | None = None,
                 retryable: bool | None = None, *, maybe_billed: bool = False):
        self.provider, self.status = provider, status
        if retryable is not None:
            self.retryable = retryable
        self.maybe_billed = maybe_billed
        super().__init__(f"{provider}: {message}" + (f" (HTTP {status})" if status else ""))


class RateLimited(ProviderError):
    retryable = True

    def __init__(self, provider: str, message: str, status: int | None = 429,
                 retry_after_s: float | None = None):
        super().__init__(provider, message, status)
        self.retry_after_s = retry_after_s


class Unavailable(ProviderError):
    """5xx, timeouts, refused connections, broken bodies: another provider may work."""

    retryable = True


class AuthFailed(ProviderError):
    """401/403: the key is wrong or lacks access. Other providers may still work."""

    retryable = True


class BadRequest(ProviderError):
    """The provider rejected the request itself (400/404/422): retrying elsewhere may help
    only if the model was the problem, so the router treats it as retryable once per model."""

    retryable = True
