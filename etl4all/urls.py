"""URLs: the one parser (:func:`parse`, a :class:`Url`), backends by scheme, redaction.

Every module reads its URL through :func:`parse`: scheme, user, password, host, port, path
and query options, percent-decoded, with :attr:`Url.shown` (password and keys hidden) for
messages. File URLs follow SQLAlchemy's slash rule (:func:`file_path`), never the disk:
``duckdb:///etl4all.duckdb`` is relative to the working directory, ``duckdb:////srv/x.duckdb``
absolute. ``file://`` URLs are RFC 8089's (``file:///srv/in`` is absolute); a bare path is a path.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import SplitResult, parse_qsl, unquote, urlencode, urlsplit

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


@dataclasses.dataclass(frozen=True)
class Url:
    """A parsed URL: its parts percent-decoded, the text as given for drivers.

    A bare path (``data/in``, ``/srv/in``, ``C:\\in``) is a ``file`` URL whose path is the
    text unchanged.
    """

    text: str = dataclasses.field(repr=False)
    """The URL as given, secrets included: for drivers only, never for messages."""
    scheme: str
    """Lower case; ``file`` for a bare path."""
    user: str | None
    password: str | None = dataclasses.field(repr=False)
    host: str | None
    """Lower case, an IPv6 address without its brackets; None when the URL names none."""
    path: str
    """``/db`` of ``mysql://host/db``, ``//srv/x.db`` of ``sqlite:////srv/x.db``."""
    query: tuple[tuple[str, str], ...]
    """The query options in order, blank values kept."""
    _parts: SplitResult = dataclasses.field(repr=False, compare=False)

    @property
    def shown(self) -> str:
        """The URL with its password and ``key=`` values hidden: for messages and logs."""
        return redact(self.text)

    @property
    def netloc(self) -> str:
        """``user:password@host:port`` as written (several hosts for a MongoDB replica set)."""
        return self._parts.netloc

    @property
    def port(self) -> int | None:
        """The port, None when the URL gives none.

        Raises:
            ConfigError: the port is not a number from 0 to 65535.
        """
        try:
            return self._parts.port
        except ValueError as exc:
            raise ConfigError(f"{self.shown}: bad port ({exc})") from None

    @property
    def database(self) -> str:
        """The path without its leading slashes: ``db`` of ``mysql://host/db``."""
        return self.path.lstrip("/")

    @property
    def options(self) -> dict[str, str]:
        """The query options by name (the last of a repeated name wins)."""
        return dict(self.query)

    def with_scheme(self, scheme: str) -> str:
        """The URL text under another scheme (``mongomock://`` read as ``mongodb://``)."""
        return self._parts._replace(scheme=scheme).geturl()

    def with_query(self, options: Iterable[tuple[str, str]]) -> str:
        """The URL text with its query replaced by ``options``: what a driver is given."""
        return self._parts._replace(query=urlencode(list(options))).geturl()


def parse(url: str) -> Url:
    """``url`` parsed; a bare path becomes a ``file`` URL (:class:`Url`).

    Raises:
        ConfigError: an unencoded ``[`` or ``]`` (the message shows no part of the password).
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # the driver's message would quote the text between brackets
        raise ConfigError(
            f"{redact(url)} is not a valid URL: percent-encode the user's and password's special "
            "characters ([ as %5B, ] as %5D, / as %2F, @ as %40)"
        ) from None
    if not parts.scheme or len(parts.scheme) == 1:  # "C:\\..." on Windows is a path too
        return Url(url, "file", None, None, None, url, (), SplitResult("file", "", url, "", ""))
    user, password = parts.username, parts.password
    return Url(
        text=url,
        scheme=parts.scheme.lower(),
        user=None if user is None else unquote(user),
        password=None if password is None else unquote(password),
        host=parts.hostname,
        path=unquote(parts.path),
        query=tuple(parse_qsl(parts.query, keep_blank_values=True)),
        _parts=parts,
    )


def scheme_of(url: str) -> str:
    """The scheme of ``url`` (``file`` for a plain path), lower case."""
    return parse(url).scheme


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
    scheme = parse(url).scheme
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
    netloc = parse(url).netloc
    rest = url.partition("://")[2][len(netloc) :]
    cut = netloc.rpartition(":")[2]  # "user:Pa" of "user:Pa/ss@host", not "host:21"
    if "@" not in netloc and ":" in netloc and not cut.isdigit() and "@" in rest:
        raise ConfigError(
            f"{redact(url)}: the user or password holds a '/', '?' or '#'; percent-encode "
            "them in the URL (/ as %2F, ? as %3F, # as %23, @ as %40)"
        )


def file_path(url: str) -> str:
    """The file of a ``sqlite://`` or ``duckdb://`` URL, by SQLAlchemy's slash rule.

    After the scheme's ``//`` comes an empty host, then ``/``, then the path as written:
    ``duckdb:///data/x.duckdb`` is ``data/x.duckdb``, relative to the working directory;
    ``duckdb:////data/x.duckdb`` is ``/data/x.duckdb``. What exists on disk changes nothing.

    Raises:
        ConfigError: no path in the URL, or a host in it.
    """
    parsed = parse(url)
    scheme = parsed.scheme
    if parsed.netloc:
        raise ConfigError(
            f"{parsed.shown}: a file URL names no host: use three slashes for a relative path "
            f"({scheme}:///data/x.db), four for an absolute one ({scheme}:////srv/x.db)"
        )
    path = parsed.path[1:] if parsed.path.startswith("/") else parsed.path
    if not path:
        raise ConfigError(f"{parsed.shown} names no file; e.g. {scheme}:///data/x.db")
    return path
