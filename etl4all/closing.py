"""``Closing``: the context-manager half that every backend shares."""

from __future__ import annotations

from typing import Self


class Closing:
    """Makes a class with ``close()`` a context manager that closes on exit."""

    def close(self) -> None:
        """Release what the backend holds."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
