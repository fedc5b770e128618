"""What the client asks of an authentication strategy.

Its own module so that the client (which applies a strategy) and the strategies (whose token
requests go through a client) each import the other's side without importing each other.
"""

from __future__ import annotations

from typing import Protocol


class AuthStrategy(Protocol):
    #: whether a 401 can be cured by ``refresh()`` (a static credential cannot)
    refreshable: bool

    def apply(self, headers: dict[str, str]) -> int: ...

    def refresh(self, generation: int | None = None) -> None: ...
