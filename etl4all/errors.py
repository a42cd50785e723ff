"""Every exception class of etl4all.

```
Etl4allError                          root; class attribute retryable = False
├── ConfigError (also ValueError)     bad or missing setting or URL
│   └── UnknownSchemeError            names the known schemes and the closest match
├── MissingDependencyError (also ImportError)   driver not installed; names the extra
├── SourceError                       connection or transfer failed              retryable
│   └── SourceConfigError (also ConfigError)   the server refused the login
├── DataError (also ValueError)       batch fails the frame schema or a warehouse constraint
├── GeocodeError
│   ├── GeocodeAuthError (also ConfigError)      REQUEST_DENIED, bad key: abort; exit 2
│   ├── GeocodeEndpointError (also ConfigError)  other HTTP 4xx, wrong URL: abort; exit 2
│   ├── GeocodeQuotaError             daily quota used up: abort the batch; exit 1 (see class)
│   │   └── DailyCapError             --max-calls-per-day reached by the fleet
│   ├── RateLimitedError              OVER_QUERY_LIMIT / 429; carries retry_after    retryable
│   └── GeocodeUnavailableError (also OSError)   5xx, network               retryable
│       └── GeocodeTimeoutError (also TimeoutError)
├── BudgetExceededError               --max-calls would be exceeded: refuse the batch; exit 1
│   └── BudgetTooSmallError (also ConfigError)   one batch needs more than all of it: exit 2
├── BrokerError                       connection or channel lost                 retryable
│   └── BrokerConfigError (also ConfigError)   refused login, topology conflict, unroutable
├── StoreError                        state or lookup store failed               retryable
│   └── StoreConfigError (also ConfigError)    refused credentials or permissions
└── WarehouseError                    connection lost, deadlock, lock timeout    retryable
```
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class Etl4allError(Exception):
    """Root of every etl4all error."""

    retryable: bool = False


class ConfigError(Etl4allError, ValueError):
    """A setting or URL is bad or missing."""


class UnknownSchemeError(ConfigError):
    """A URL scheme or backend name that no backend serves."""

    def __init__(self, role: str, scheme: str, known: Iterable[str]) -> None:
        known = sorted(known)
        close = difflib.get_close_matches(scheme, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        super().__init__(f"unknown {role} {scheme!r}; known: {', '.join(known)}.{hint}")
        self.role = role
        self.scheme = scheme


class MissingDependencyError(Etl4allError, ImportError):
    """A backend's driver is not installed."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"the Python package {module!r} is not installed; "
            f"install it with: pip install 'etl4all[{extra}]'"
        )


class SourceError(Etl4allError):
    """Listing or transferring a source file failed."""

    retryable = True


class SourceConfigError(SourceError, ConfigError):
    """The source refused us for a reason that retrying cannot fix: the login (FTP 530).

    It is also a ConfigError: the command stops and the CLI exits with code 2.
    """

    retryable = False


class DataError(Etl4allError, ValueError):
    """A batch does not fit the frame schema or a warehouse constraint."""


class GeocodeError(Etl4allError):
    """Reverse geocoding failed."""


class GeocodeAuthError(GeocodeError, ConfigError):
    """The provider refused the credentials (REQUEST_DENIED): stop and fix the key.

    It is also a ConfigError: the start-up check finds it before any work is taken, and the
    CLI exits with code 2.
    """


class GeocodeEndpointError(GeocodeError, ConfigError):
    """The endpoint answered an HTTP 4xx that no retry can fix: the URL is wrong.

    It is also a ConfigError (exit code 2), like :class:`GeocodeAuthError`.
    """


class GeocodeQuotaError(GeocodeError):
    """The provider's daily quota is used up: stop until it resets or is raised.

    Not a ConfigError: no setting is wrong, the quota comes back by itself (Google's at
    midnight Pacific time), so the CLI exits with code 1, like other operational failures.
    """


class DailyCapError(GeocodeQuotaError):
    """``--max-calls-per-day`` is used up for this provider and key (counted in Redis).

    A :class:`GeocodeQuotaError`: the batch in hand is given back to its queue, the worker
    stops and the command exits 1; the cap resets at 00:00 UTC.
    """


class RateLimitedError(GeocodeError):
    """The provider asked us to slow down (OVER_QUERY_LIMIT, HTTP 429)."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class GeocodeUnavailableError(GeocodeError, OSError):
    """The provider could not be reached or failed (HTTP 5xx, network, UNKNOWN_ERROR)."""

    retryable = True


class GeocodeTimeoutError(GeocodeUnavailableError, TimeoutError):
    """A geocoding request timed out."""


class BudgetExceededError(Etl4allError):
    """The work needs more API calls than --max-calls allows.

    Not a ConfigError: what was paid is cached, so the same command run again starts with a
    whole budget and needs fewer calls; it goes on where this one stopped (exit code 1).
    """


class BudgetTooSmallError(BudgetExceededError, ConfigError):
    """One batch needs more API calls (after dedup and cache) than the whole ``--max-calls``.

    Its calls are refused before any is made, so nothing gets cached and a rerun with the
    same settings refuses the same batch: a configuration fault (exit code 2).
    """


class BrokerError(Etl4allError):
    """The message broker connection or channel failed."""

    retryable = True


class BrokerConfigError(BrokerError, ConfigError):
    """The broker refused us for a reason that retrying cannot fix.

    Refused credentials, a vhost or permission error, a queue declared elsewhere with other
    arguments, a header value AMQP cannot carry, an unroutable message (its queue is gone).
    It is also a ConfigError: the worker stops and the CLI exits with code 2.
    """

    retryable = False


class StoreError(Etl4allError):
    """The state store or the lookup store failed."""

    retryable = True


class StoreConfigError(StoreError, ConfigError):
    """The state or lookup store refused us for a reason that retrying cannot fix.

    Refused credentials or permissions. It is also a ConfigError: the worker stops and the
    CLI exits with code 2.
    """

    retryable = False


class WarehouseError(Etl4allError):
    """The warehouse failed: connection lost, deadlock, lock timeout."""

    retryable = True
