"""The context-manager half that every backend shares: :class:`Closing` to inherit it, and
:class:`Closes` for the role Protocols to declare it."""

from __future__ import annotations

from typing import Protocol, Self, runtime_checkable


class Closing:
    """Makes a class with ``close()`` a context manager that closes on exit."""

    def close(self) -> None:
        """Release what the backend holds."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@runtime_checkable
class Closes(Protocol):
    """What every role shares: a context manager that closes on exit."""

    def close(self) -> None:
        """Release connections."""
        ...

    def __enter__(self) -> Self:
        """Use as a context manager: ``close()`` on exit."""
        ...

    def __exit__(self, *exc: object) -> None:
        """Close."""
        ...
