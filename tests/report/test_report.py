"""``etl4all report``: a self-contained page with the numbers, charts and tables."""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest
import synthetic
from click.testing import CliRunner

from etl4all.cli import cli
from etl4all.report.facts import FAILED_REASONS
from etl4all.warehouse.duckdb import DuckdbWarehouse

ROWS = 3000


class References(HTMLParser):
    """Every URL the page would fetch: src/href attributes, and url(...) in its styles."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.images = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.images += tag == "img"
        self.urls += [value or "" for name, value in attrs if name in ("src", "href", "srcset")]

    def handle_data(self, data: str) -> None:
        self.urls += re.findall(r"url\(([^)]*)\)|@import\s+(\S+)", data and "")


def report(url: str, out: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["report", "--warehouse", url, "--out", str(out)])
    assert not isinstance(result.exception, AssertionError | TypeError | ValueError), result
    return result.exit_code, result.output


@pytest.fixture
def filled(tmp_path: Path) -> tuple[str, pl.DataFrame]:
    url = f"duckdb:///{tmp_path}/w.duckdb"
    addresses = synthetic.addresses(ROWS, seed=2)
    with DuckdbWarehouse(url=url) as wh:
        wh.load(addresses, addresses.clear())
        wh.load_rejects(synthetic.rejects())
    return url, addresses


def test_the_report_shows_the_numbers_charts_and_tables_inline(
    tmp_path: Path, filled: tuple[str, pl.DataFrame]
) -> None:
    url, addresses = filled
    out = tmp_path / "out" / "report.html"
    code, output = report(url, out)

    assert code == 0, output
    assert re.fullmatch(
        rf"report: {re.escape(str(out))} \(.*3,000 rows, 30 files .*\) in \S+ s\n", output
    )
    page = out.read_text()
    refs = References()
    refs.feed(page)
    assert refs.images == 5  # map, density, neighborhoods, streets, files
    street = addresses["street"].is_not_null().sum()
    assert f"<b>{street / ROWS:.1%}</b>street-level rows" in page
    zero = (addresses["geocode_status"] == "ZERO_RESULTS").sum()
    assert f"<b>{zero:,} ({zero / ROWS:.1%})</b>ZERO_RESULTS" in page
    failed = synthetic.rejects().filter(pl.col("reason").is_in(FAILED_REASONS)).height
    assert f"<b>{failed}</b>failed geocodes" in page
    oldest = re.search(r'"card warn"><b>([\d.]+) days</b>oldest google geocode \(terms: 30', page)
    assert oldest and 30 < float(oldest[1]) < 45
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    past = addresses.filter((pl.col("geocoder") == "google") & (pl.col("geocoded_at") < cutoff))
    assert f'<td class="n">{past.height:,}</td></tr>' in page
    biggest = addresses["neighborhood"].drop_nulls().mode().item()
    assert f"<td>{biggest}</td>" in page
    assert "<td>missing_longitude</td>" in page
    # it fetches nothing: every image is inline, no script, no link to another host
    assert refs.urls and all(u.startswith("data:image/png;base64,") for u in refs.urls)
    assert "http://" not in page and "https://" not in page and "<script" not in page


def test_an_empty_warehouse_gives_a_clear_page(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path}/empty.duckdb"
    DuckdbWarehouse(url=url).close()
    out = tmp_path / "report.html"
    code, output = report(url, out)

    assert code == 0, output
    page = out.read_text()
    assert "holds no address rows yet" in page
    assert "<img" not in page and "Traceback" not in page


def test_a_missing_warehouse_is_one_line_and_exit_2(tmp_path: Path) -> None:
    code, output = report(f"duckdb:///{tmp_path}/nothing.duckdb", tmp_path / "r.html")

    assert code == 2
    assert output.count("\n") == 1 and "no such DuckDB file" in output
    assert not (tmp_path / "r.html").exists()


@pytest.mark.mysql
def test_the_report_reads_mysql(tmp_path: Path, mysql_url: str) -> None:
    from etl4all.warehouse.mysql import MySqlWarehouse

    addresses = synthetic.addresses(500, seed=3)
    with MySqlWarehouse(url=mysql_url) as wh:
        wh.init()
        wh.load(addresses, addresses.clear())
    code, output = report(mysql_url, tmp_path / "r.html")

    assert code == 0, output
    assert "500 rows, 30 files" in output
    assert (tmp_path / "r.html").read_text().count("<img") == 5


@pytest.mark.postgres
def test_the_report_reads_postgresql(tmp_path: Path, postgres_url: str) -> None:
    from etl4all.warehouse.postgres import PostgresWarehouse

    addresses = synthetic.addresses(500, seed=3)
    with PostgresWarehouse(url=postgres_url) as wh:
        wh.init()
        wh.load(addresses, addresses.clear())
    code, output = report(postgres_url, tmp_path / "r.html")

    assert code == 0, output
    assert "500 rows, 30 files" in output
    assert (tmp_path / "r.html").read_text().count("<img") == 5
