"""The one wording of a timeout, for every backend's error messages.

A server that accepts a connection and never answers is an outage like any other: each
backend maps its driver's timeout to the role's retryable error (WarehouseError, BrokerError,
StoreError, SourceError, GeocodeTimeoutError) with a message built here, so an operator reads
the same shape everywhere: the host and port, what did not happen, the time waited and the
option that sets it::

    127.0.0.1:3306 sent no handshake within 10 s (connect_timeout)

The timeouts themselves and their defaults are in each backend's module docstring.
"""

from __future__ import annotations


def timed_out(host: str, port: int | None, what: str, seconds: float | None, option: str) -> str:
    """``{host}:{port} {what} within {seconds} s ({option})``.

    Args:
        what: what the server did not do, e.g. ``did not accept the connection``.
        seconds: the timeout that ran out (None: no figure is shown).
        option: the URL option or flag that sets it, e.g. ``connect_timeout``.
    """
    where = f"[{host}]" if ":" in host else host
    if port is not None:
        where += f":{port}"
    within = f" within {round(seconds, 1):g} s" if seconds is not None else ""
    return f"{where} {what}{within} ({option})"
