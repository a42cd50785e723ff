"""The report as one self-contained HTML page: styles inline, images as ``data:`` URIs.

The page loads nothing from anywhere (no script at all, no font, no stylesheet link), so
it opens offline and can be mailed as one file. Every value from the warehouse is escaped.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
from collections.abc import Mapping

import polars as pl

from etl4all.report.facts import ReportData

FILES_SHOWN = 100
"""Source files listed in the table (the ones loaded last); the chart shows them all."""

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1100px;
       padding: 1.5em; color: #222; }
h1 { margin-bottom: 0.1em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; }
.meta { color: #666; }
.cards { display: flex; flex-wrap: wrap; gap: 0.8em; margin: 1em 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.6em 1em; min-width: 9em; }
.card b { display: block; font-size: 1.5em; }
.card.warn { border-color: #d1495b; background: #fdf0f1; }
.empty { border: 1px solid #e0c36a; background: #fdf8e6; padding: 1em; border-radius: 6px; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 13px; }
th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #eee; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.warn td { background: #fdf0f1; }
img { max-width: 100%; height: auto; display: block; margin: 0.6em 0; }
.grid { display: grid; grid-template-columns: 1fr 1fr; gap: 1em; }
code { background: #f4f4f4; padding: 0 0.25em; }
"""


def render(data: ReportData, images: Mapping[str, bytes]) -> str:
    """The page for ``data``; ``images`` are PNGs by name (``map``, ``density``,
    ``neighborhoods``, ``streets``, ``files``), each left out when absent."""
    stamp = f"{data.generated_at:%Y-%m-%d %H:%M} UTC"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>etl4all warehouse report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>etl4all warehouse report</h1>",
        f'<p class="meta">{_e(data.url)} · generated {_e(stamp)}</p>',
        _cards(data),
    ]
    if not data.rows:
        parts.append(
            '<div class="empty"><b>The warehouse holds no address rows yet.</b> Load files '
            "with <code>etl4all run SOURCE</code> (or the services-mode workers), then run "
            "<code>etl4all report</code> again.</div>"
        )
    else:
        parts += _body(data, images)
    parts += ["<h2>Rejects by reason</h2>", _rejects(data.rejects), "</body></html>"]
    return "\n".join(parts)


def _body(data: ReportData, images: Mapping[str, bytes]) -> list[str]:
    return [
        "<h2>Geocoder coverage</h2>",
        _coverage(data.coverage),
        "<h2>Where the points are</h2>",
        '<div class="grid">',
        _image(images, "map", "map of the points"),
        _image(images, "density", "density of the points"),
        "</div>",
        "<h2>Top neighborhoods and streets</h2>",
        '<div class="grid">',
        _image(images, "neighborhoods", "top neighborhoods")
        or "<p>No neighborhood names: the geocoder gave none (the offline geocoder gives "
        "cities only).</p>",
        _image(images, "streets", "top streets")
        or "<p>No street names: the geocoder gave none (the offline geocoder gives cities "
        "only).</p>",
        "</div>",
        table(data.neighborhoods),
        table(data.streets),
        "<h2>Cities</h2>",
        table(data.cities),
        "<h2>Source files over time</h2>",
        _image(images, "files", "points per source file"),
        table(data.files.tail(FILES_SHOWN)),
        f"<p>The {FILES_SHOWN} files loaded last of {data.files.height:,}.</p>"
        if data.files.height > FILES_SHOWN
        else "",
    ]


def _cards(data: ReportData) -> str:
    rows = data.rows
    street = int(data.headline["street_level"])
    zero = int(data.headline["zero_results"])
    rejects = int(data.rejects.get_column("rejects").sum()) if data.rejects.height else 0
    cards = [
        ("address rows", f"{rows:,}", False),
        ("source files", f"{int(data.headline['files']):,}", False),
        ("street-level rows", _share(street, rows), False),
        ("ZERO_RESULTS", f"{zero:,} ({_share(zero, rows)})", False),
        ("failed geocodes", f"{data.failed:,}", data.failed > 0),
        ("rejects", f"{rejects:,}", False),
        ("duplicate coordinates", f"{data.duplicates:,}", data.duplicates > 0),
    ]
    cards += [_age_card(row) for row in data.coverage.iter_rows(named=True)]
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card{" warn" if warn else ""}"><b>{_e(value)}</b>{_e(label)}</div>'
            for label, value, warn in cards
        )
        + "</div>"
    )


def _age_card(row: dict[str, object]) -> tuple[str, str, bool]:
    """The age of a geocoder's oldest geocode, against its caching terms if it has any."""
    age = row["age_days"]
    label = f"oldest {row['geocoder'] or 'unknown'} geocode"
    if age is None:
        return label, "—", False
    value = f"{float(age):.1f} days"  # type: ignore[arg-type]
    terms = row["terms_days"]
    if terms is None:
        return label, value, False
    return f"{label} (terms: {terms} days)", value, float(age) > float(terms)  # type: ignore[arg-type]


def _coverage(coverage: pl.DataFrame) -> str:
    shown = coverage.with_columns(
        street_share=(100 * pl.col("street_level") / pl.col("address_rows")).round(1),
        age_days=pl.col("age_days").round(1),
    ).select(
        "geocoder",
        "address_rows",
        "street_level",
        pl.col("street_share").alias("street_level_%"),
        "zero_results",
        "oldest_geocode",
        "age_days",
        "terms_days",
        "past_terms",
    )
    warn = [bool(n) for n in shown.get_column("past_terms").to_list()]
    note = (
        "<p>Rows past the terms: results older than the days the provider's terms allow "
        "caching them (Google: 30). Re-geocode them (<code>etl4all regeocode</code>) or "
        "clear their address columns, as your agreement requires.</p>"
    )
    return table(shown, warn=warn) + note


def _rejects(rejects: pl.DataFrame) -> str:
    if rejects.is_empty():
        return "<p>No rejects: every line read was a point.</p>"
    return table(rejects)


def table(frame: pl.DataFrame, warn: list[bool] | None = None) -> str:
    """``frame`` as an HTML table, values escaped, numbers right-aligned."""
    if frame.is_empty():
        return "<p>(none)</p>"
    numeric = [dtype.is_numeric() for dtype in frame.dtypes]
    head = "".join(f"<th>{_e(name.replace('_', ' '))}</th>" for name in frame.columns)
    body = []
    for i, row in enumerate(frame.iter_rows()):
        cells = "".join(
            f'<td class="n">{_e(_fmt(v))}</td>' if is_n else f"<td>{_e(_fmt(v))}</td>"
            for v, is_n in zip(row, numeric, strict=True)
        )
        cls = ' class="warn"' if warn and warn[i] else ""
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _fmt(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, dt.datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    return str(value)


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "—"


def _image(images: Mapping[str, bytes], name: str, alt: str) -> str:
    if name not in images:
        return ""
    data = base64.b64encode(images[name]).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _e(text: str) -> str:
    return html.escape(text, quote=True)
