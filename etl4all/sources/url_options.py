"""The query options the network sources share (``recursive``, ``timeout``, a file path,
a flag), read from :attr:`etl4all.urls.Url.options` with one message per mistake."""

from __future__ import annotations

import os
from collections.abc import Iterable

from etl4all.errors import ConfigError

FLAGS = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}
"""The spellings of a yes/no option."""


def refuse_unknown(values: dict[str, str], known: Iterable[str], safe_url: str) -> None:
    """Refuse an option the source does not know (a typo would otherwise be ignored).

    Raises:
        ConfigError: naming the first unknown option and the known ones.
    """
    known = tuple(known)
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{safe_url}: unknown option {unknown[0]!r}; known: {', '.join(known)}")


def flag(values: dict[str, str], name: str, default: str, safe_url: str) -> bool:
    """The yes/no option ``name``.

    Raises:
        ConfigError: not one of :data:`FLAGS`.
    """
    text = values.get(name, default).lower()
    if text not in FLAGS:
        raise ConfigError(f"{safe_url}: {name} must be yes or no, got {text!r}")
    return FLAGS[text]


def seconds(values: dict[str, str], name: str, default: str, safe_url: str) -> float:
    """The positive number of seconds ``name``.

    Raises:
        ConfigError: not a number, or not positive.
    """
    try:
        value = float(values.get(name, default))
    except ValueError as exc:
        raise ConfigError(f"{safe_url}: {name} must be a number of seconds") from exc
    if value <= 0:
        raise ConfigError(f"{safe_url}: {name} must be positive, got {value}")
    return value


def file_path(values: dict[str, str], name: str, safe_url: str) -> str | None:
    """The existing file ``name`` names (``~`` expanded), None when the option is not given.

    Raises:
        ConfigError: the file does not exist.
    """
    if name not in values:
        return None
    path = os.path.expanduser(values[name])
    if not os.path.isfile(path):
        raise ConfigError(f"{safe_url}: {name}={values[name]} is not a file")
    return path
