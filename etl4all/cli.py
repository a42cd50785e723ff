"""The ``etl4all`` command line: the command group, with one module per group of commands in
:mod:`etl4all.commands`. Errors are one line on stderr; exit codes: :mod:`etl4all.exits`.
"""

from __future__ import annotations

import click

from etl4all import __version__
from etl4all.commands import dead_letters, files, report, run, services


def main() -> None:
    """Entry point of the console script."""
    cli(prog_name="etl4all")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="etl4all")
def cli() -> None:
    """etl4all: GPS coordinate files to a warehouse of street addresses.

    Reads data_points files (local folders or FTP), reverse-geocodes every distinct
    coordinate once (offline, Google or Nominatim) and loads one row per coordinate into
    DuckDB or MySQL. Settings come from flags > ETL4ALL_* variables > --pipeline TOML >
    defaults.
    """


for command in (
    run.run,
    run.estimate,
    run.regeocode,
    files.parse_command,
    files.sample,
    services.run_stage,
    services.check_command,
    services.init_db,
    services.status,
    dead_letters.dead_letters,
    report.report,
):
    cli.add_command(command)
