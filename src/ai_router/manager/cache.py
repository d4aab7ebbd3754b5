"""A bounded LRU of decisions, keyed by what a decision depends on.

Inside an agent session most requests repeat the same latest user text while tool
results pile up behind it: the input token count and turn count grow, the question does
not. The key keeps what changes the decision (the text, the measured features, the
client's virtual model and max_tokens) and leaves out what only grows, so those
requests are decided once.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

from ..digest import Digest

DEFAULT_SIZE = 512
V = TypeVar("V")
Key = tuple[object, ...]


def cache_key(digest: Digest) -> Key:
    text = " ".join(digest.text.lower().split())  # case and spacing change nothing
    return (text, digest.has_tools, digest.has_images, digest.wants_json, digest.long_context,
            digest.virtual_model, digest.requested_max_output)


class DecisionCache(Generic[V]):
    def __init__(self, size: int = DEFAULT_SIZE):
        self.size = size
        self._items: OrderedDict[Key, V] = OrderedDict()

    def get(self, digest: Digest) -> V | None:
        key = cache_key(digest)
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, digest: Digest, value: V) -> None:
        if self.size <= 0:
            return
        key = cache_key(digest)
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
