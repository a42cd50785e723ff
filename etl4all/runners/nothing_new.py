"""A run with nothing new, found out from the listings and the done marks alone.

Before ``etl4all run`` opens its warehouse and geocoder, and imports the data libraries
(Polars, PyArrow, DuckDB, aiohttp) that processing needs, it lists its sources and reads the
done marks once. When no file is forced and every file listed is done (same size and mtime,
complete, or not final yet: :meth:`~etl4all.stages.extract_config.ExtractConfig.pending`),
the run has nothing to do: it has read no file, paid for nothing, and checked only what it
used (the source and the state). ``etl4all check`` checks every backend.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import ExitStack

from etl4all.clock import REAL, Clock
from etl4all.runners import wiring
from etl4all.settings import Settings
from etl4all.sources.base import FileRef


def done_files(urls: Iterable[str], settings: Settings, *, clock: Clock = REAL) -> int | None:
    """The number of files listed in ``urls`` when none of them needs work; None when one
    does, when a file is forced, or when no file is listed (the run says so)."""
    if settings.force or settings.force_files:
        return None
    config = wiring.extract_config(settings, ordered=True)
    with ExitStack() as stack:
        store = stack.enter_context(wiring.open_state(settings))
        refs: list[FileRef] = []
        for url in urls:
            source = stack.enter_context(wiring.open_source(url, settings))
            refs += config.scoped(source.list_files())
        if not refs:
            return None
        done = store.done([ref.key for ref in refs])
        return None if config.pending(refs, done, clock.wall()) else len(refs)
