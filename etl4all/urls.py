"""URL helpers: pick a backend by scheme, and redact secrets before logging."""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import SplitResult, urlsplit

from etl4all.errors import ConfigError, MissingDependencyError, UnknownSchemeError

# A secret query value runs to the next "&", "#" or space: encoders escape those inside a
# value, but not ";", "/", "?", ":" or "@" (yarl sends a key "a;b@c" as such).
_SECRET_QUERY = re.compile(r"((?:^|[?&;])(?:key|api_key|apikey|token|password)=)[^&#\s]*", re.I)
# The password runs to the last "@" of the URL: a password with an unencoded "/" or "@" is
# hidden too (over-hiding a path that holds an "@" is the safe side).
_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)\S*(@)", re.I)

FILE_SCHEMES = ("sqlite", "duckdb")
"""Schemes whose URL names a local file (:func:`file_path`): ``sqlite:///path``."""


def redact(text: str) -> str:
    """Hide passwords in URLs and ``key=`` style query values anywhere in ``text``.

    Both patterns are matched on the original text and every character either covers is
    hidden, so neither can hide the other's start (an ``@`` in a key, a ``key=`` in a path)
    and leave the rest of a secret in view.
    """
    spans = [(m.end(1), m.start(2)) for m in _USERINFO.finditer(text)]
    spans += [(m.end(1), m.end()) for m in _SECRET_QUERY.finditer(text)]
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    parts, shown = [], 0
    for start, end in merged:
        parts += [text[shown:start], "***"]
        shown = end
    return "".join(parts) + text[shown:]


def _urlsplit(url: str) -> SplitResult:
    """``urlsplit``, its ValueError (an unencoded "[" or "]") a ConfigError that shows no
    part of the URL's password (the driver's message quotes the text between brackets)."""
    try:
        return urlsplit(url)
    except ValueError:
        raise ConfigError(
            f"{redact(url)} is not a valid URL: percent-encode the user's and password's special "
            "characters ([ as %5B, ] as %5D, / as %2F, @ as %40)"
        ) from None


def split(url: str) -> SplitResult:
    """Split a URL; a plain path becomes ``file://``.

    Raises:
        ConfigError: ``url`` is not a valid URL.
    """
    parts = _urlsplit(url)
    if not parts.scheme or len(parts.scheme) == 1:  # "C:\\..." on Windows is a path too
        return (
            urlsplit("file://" + url)
            if url.startswith("/")
            else SplitResult("file", "", url, "", "")
        )
    return parts


def scheme_of(url: str) -> str:
    """The scheme of ``url`` (``file`` for a plain path), lower case."""
    return split(url).scheme.lower()


def load_class(role: str, key: str, table: Mapping[str, tuple[str, str]]) -> Any:
    """Import the backend class registered under ``key`` in a role's table.

    The table maps a scheme or name to ``("package.module:Class", "extra")``.

    Raises:
        UnknownSchemeError: ``key`` is not in the table.
        MissingDependencyError: the backend's driver is not installed.
    """
    if key not in table:
        raise UnknownSchemeError(role, key, table)
    target, extra = table[key]
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and not exc.name.startswith("etl4all"):
            raise MissingDependencyError(exc.name, extra) from exc
        raise
    return getattr(module, class_name)


def build(role: str, url: str, table: Mapping[str, tuple[str, str]], **options: Any) -> Any:
    """The backend of ``url``'s scheme in a role's table, built as ``Class(url=url, **options)``.

    Every role's ``from_url`` is this call.

    Raises:
        UnknownSchemeError: no backend serves the URL's scheme.
        MissingDependencyError: the backend's driver is not installed.
        ConfigError: the backend refused the URL or an option (checked at construction).
    """
    cls = load_class(role, scheme_of(url), table)
    check(url)
    return cls(url=url, **options)


def check(url: str) -> None:
    """Refuse a URL that would split in the wrong place (:func:`check_form`,
    :func:`check_userinfo`): call it before any use of the URL's parts, a DNS lookup of its
    host included (an unencoded ``/`` in a password makes the user name the host).

    Raises:
        ConfigError: naming the fix, with the password hidden.
    """
    check_form(url)
    check_userinfo(url)


def check_form(url: str) -> None:
    """Refuse a URL whose scheme is not followed by ``//`` (``mysql:/db``, ``redis:0``).

    ``urlsplit`` reads ``mysql:/x`` as a path with no host, which a driver would then take
    as localhost. Plain paths and ``file:`` URLs (``file:/srv/in`` is valid) are let through.

    Raises:
        ConfigError: naming the form the URL needs, with the password hidden.
    """
    scheme = split(url).scheme.lower()
    if scheme == "file" or url[len(scheme) + 1 :].startswith("//"):
        return
    form = f"{scheme}:///path" if scheme in FILE_SCHEMES else f"{scheme}://host/..."
    # redact() knows user:password@ only after "//": hide all before the last "@" here
    shown = f"{scheme}:***@{url.rpartition('@')[2]}" if "@" in url else redact(url)
    raise ConfigError(
        f"{shown} is not a valid URL: write {form} (with the slashes: after "
        f"'{scheme}:' one slash or none would make the rest a path)"
    )


def check_userinfo(url: str) -> None:
    """Refuse a URL whose user or password holds an unencoded ``/``, ``?`` or ``#``.

    Such a URL splits in the wrong place (the password's tail becomes the path), so every
    later error would point the wrong way.

    Raises:
        ConfigError: naming the fix, percent-encoding, with the password hidden.
    """
    parts = _urlsplit(url)
    rest = url.partition("://")[2][len(parts.netloc) :]
    cut = parts.netloc.rpartition(":")[2]  # "user:Pa" of "user:Pa/ss@host", not "host:21"
    if "@" not in parts.netloc and ":" in parts.netloc and not cut.isdigit() and "@" in rest:
        raise ConfigError(
            f"{redact(url)}: the user or password holds a '/', '?' or '#'; percent-encode "
            "them in the URL (/ as %2F, ? as %3F, # as %23, @ as %40)"
        )


def file_path(url: str) -> str:
    """The file path of a ``sqlite:///path`` or ``duckdb:///path`` URL.

    ``duckdb:///tmp/x.duckdb`` is ``/tmp/x.duckdb`` when the top folder (``/tmp``) exists;
    a bare name (``duckdb:///etl4all.duckdb``) or a top folder that does not exist at the root
    (``sqlite:///.etl4all/state.db``) is relative to the working directory; four slashes
    are always absolute and ``///./`` always relative.

    Raises:
        ConfigError: no path in the URL, or a host in it.
    """
    parts = _urlsplit(url)
    if parts.netloc:
        raise ConfigError(f"{redact(url)}: use three slashes, e.g. {parts.scheme}:///data/x.db")
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if not path:
        raise ConfigError(f"{redact(url)} names no file; e.g. {parts.scheme}:///data/x.db")
    top, sep, _ = path.partition("/")
    if path.startswith("/") or (sep and top not in ("", ".", "..") and os.path.isdir("/" + top)):
        return "/" + path.lstrip("/")
    return path
