"""The analysis report (``etl4all report``) and the analysis queries it runs.

``queries`` runs ``sql/analysis/*.sql`` on DuckDB or MySQL; ``facts`` gathers what the
report shows; ``charts`` draws it with matplotlib (the ``report`` extra); ``page`` writes
the self-contained HTML; ``build.write_report`` does all of it.
"""

from __future__ import annotations

from types import ModuleType

from etl4all.errors import MissingDependencyError


def charts_or_fail() -> ModuleType:
    """:mod:`etl4all.report.charts`, or a clear error when matplotlib is not installed.

    Raises:
        MissingDependencyError: matplotlib is missing (``pip install 'etl4all[report]'``).
    """
    try:
        from etl4all.report import charts
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "matplotlib":
            raise MissingDependencyError("matplotlib", "report") from exc
        raise
    return charts
