"""``etl4all status``: what the queues, the state store and the warehouse hold now.

:func:`gather` asks each part with one cheap request and returns plain data (what ``--json``
prints); a part that cannot be reached is reported as ``{"error": "..."}`` (redacted), and
the other parts are still shown. :func:`render` draws the same data as rich tables.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from etl4all import urls
from etl4all.broker import queues
from etl4all.errors import ConfigError, Etl4allError
from etl4all.runners import wiring
from etl4all.settings import Settings

CONNECT_TIMEOUT = 5.0
"""Seconds ``status`` waits for RabbitMQ: a status is wanted now, even when it is down."""
UNACKED_NOTE = "unacked: not visible over AMQP (the RabbitMQ management UI shows it)"


def gather(settings: Settings) -> dict[str, Any]:
    """The status of every configured part, as JSON-ready data.

    ``dead_letters`` is the number of messages waiting in the dead-letter queue (null without
    a broker, or when it cannot be asked); each queue's ``kind`` is ``points``, ``addresses``
    or ``dead`` (the dead-letter queue).
    """
    found: dict[str, Any] = {
        "queues": _part(lambda: _queues(settings)) if settings.broker_url else None,
        "state": _part(lambda: _state(settings)),
        "warehouse": _part(lambda: _warehouse(settings)),
    }
    part = found["queues"]
    waiting = None
    if part is not None and "error" not in part:
        waiting = sum(q["ready"] for q in part["queues"] if q["kind"] == queues.DEAD)
    return {"dead_letters": waiting, **found}


def dead_letters(status: dict[str, Any]) -> int:
    """Messages waiting in the dead-letter queue (0 when unknown)."""
    return int(status["dead_letters"] or 0)


def unreachable(status: dict[str, Any]) -> list[str]:
    """Why each part that could not be asked failed."""
    parts = (status[name] for name in ("queues", "state", "warehouse"))
    return [part["error"] for part in parts if part is not None and "error" in part]


def _part(ask: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """What ``ask`` found, or the reason it failed; a wrong setting is raised (exit 2)."""
    try:
        return ask()
    except ConfigError:
        raise
    except Etl4allError as exc:
        return {"error": urls.redact(str(exc))}


def _queues(settings: Settings) -> dict[str, Any]:
    settings = settings.replace(connect_timeout=min(settings.connect_timeout, CONNECT_TIMEOUT))
    rows = []
    with wiring.open_broker(settings) as bus:
        for kind in (queues.POINTS, queues.ADDRESSES, queues.DEAD):
            name = queues.name(settings.queue_prefix, kind)
            rows.append(
                {
                    "name": name,
                    "ready": bus.depth(name),
                    "unacked": None,
                    "consumers": bus.consumers(name),
                    "kind": kind,
                }
            )
    return {"url": urls.redact(settings.broker_url or ""), "queues": rows}


def _state(settings: Settings) -> dict[str, Any]:
    with wiring.open_state(settings) as store:
        claims = store.claims()
        return {
            "url": urls.redact(settings.state_url),
            "files_done": store.done_count(),
            "files_claimed": [
                {"file": key, **dataclasses.asdict(claim)} for key, claim in sorted(claims.items())
            ],
            "cache_entries": store.cache_size(),
        }


def _warehouse(settings: Settings) -> dict[str, Any]:
    with wiring.open_warehouse(settings) as wh:
        rows, last = wh.count(), wh.last_loaded()
    shown = last.isoformat(timespec="seconds") if last else None
    return {"url": urls.redact(settings.warehouse_url), "rows": rows, "last_loaded": shown}


def render(status: dict[str, Any], console: Console) -> None:
    """Draw ``status`` as tables: queues, files claimed, and a summary of the stores."""
    part = status["queues"]
    if part is not None and "error" not in part:
        table = Table(title=f"queues  {part['url']}", caption=UNACKED_NOTE, title_justify="left")
        for column in ("queue", "ready", "unacked", "consumers"):
            table.add_column(column, justify="left" if column == "queue" else "right")
        for q in part["queues"]:
            style = "bold red" if q["kind"] == queues.DEAD and q["ready"] else None
            unacked = "–" if q["unacked"] is None else str(q["unacked"])
            table.add_row(q["name"], str(q["ready"]), unacked, str(q["consumers"]), style=style)
        console.print(table)
    summary = Table(title="stores", show_header=False, title_justify="left")
    summary.add_column("what")
    summary.add_column("value", justify="right")
    summary.add_column("where")
    if part is not None and "error" in part:
        summary.add_row("queues", "[red]unreachable[/red]", part["error"])
    for name, rows in (("state", _state_rows), ("warehouse", _warehouse_rows)):
        if "error" in status[name]:
            summary.add_row(name, "[red]unreachable[/red]", status[name]["error"])
        else:
            for row in rows(status[name]):
                summary.add_row(*row)
    console.print(summary)
    claimed = status["state"].get("files_claimed") or []
    if claimed:
        table = Table(title="files claimed", title_justify="left")
        for column in ("file", "owner (host:pid)", "expires in"):
            table.add_column(column)
        for claim in claimed:
            table.add_row(claim["file"], claim["owner"], f"{claim['expires_in']:.0f} s")
        console.print(table)


def _state_rows(part: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        ("files done", str(part["files_done"]), part["url"]),
        ("files claimed", str(len(part["files_claimed"])), ""),
        ("cache entries", str(part["cache_entries"]), ""),
    ]


def _warehouse_rows(part: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        ("warehouse rows", str(part["rows"]), part["url"]),
        ("last load", part["last_loaded"] or "never", ""),
    ]
