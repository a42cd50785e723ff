"""A file's life over many events, as Hypothesis state machines (DESIGN.md, "Identity and
idempotence"): the warehouse equals the files, whatever happens to them and to the messages.

Two drivers live through the same file events (add, replace, truncate to 0 bytes, re-upload
"half then whole", copy under another name):

- :class:`EmbeddedFileLife`: ``etl4all run`` on a folder (DuckDB + SQLite, offline geocoder);
- :class:`BrokerFileLife`: the broker driver's extract publishing into an in-process broker
  (whose connection may drop in the middle of a pass), and the test delivering the messages
  to the transform and load handlers itself: in any order, some twice, some held back across
  later file events, some after a crash.

Oracle, checked once everything is settled (after a run; for the broker, once every message
has been delivered): the warehouse holds exactly the distinct coordinates of the *current
loaded version* of every file, without duplicates. A file's current loaded version is its
latest content, except when that content is empty or a strict byte prefix of the version
loaded before it: then the file is held and the earlier version still counts.

Sequences of the broker machine's rules that break the oracle are replayed as plain tests
(random search reaches some of them rarely). The last test runs the embedded machine's
sequences with the fake Google API and checks only that a coordinate is paid for once: API
calls never exceed the distinct coordinates (6 decimals) ever written.

Examples per machine: ``ETL4ALL_STATEFUL_EXAMPLES`` (a long campaign sets it to hundreds).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from geocoders.fake_api import FakeApi
from hypothesis import HealthCheck, currently_in_test_context, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from etl4all import fingerprint, frames, sample, urls
from etl4all.broker import batch
from etl4all.broker.base import (
    DELIVERY_COUNT_HEADER,
    SCHEMA_HEADER,
    SOURCE_HEADER,
    VERSION_HEADER,
)
from etl4all.broker.memory import MemoryBroker
from etl4all.errors import BrokerError
from etl4all.parsing import parse
from etl4all.runners import wiring
from etl4all.runners.broker import _publish_files, load_handler, transform_handler
from etl4all.runners.embedded import RunSummary, run
from etl4all.settings import Settings
from etl4all.stages.extract import Extractor
from etl4all.stages.transform import CallBudget

EXAMPLES = int(os.environ.get("ETL4ALL_STATEFUL_EXAMPLES", "12"))
"""Examples per machine (the paid test runs a quarter of them): 1 to 3 s each."""
LIFE = settings(
    max_examples=EXAMPLES,
    stateful_step_count=14,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
"""The embedded machine's budget: a run is about 0.1 s."""
BROKER_LIFE = settings(LIFE, stateful_step_count=30)
"""The broker machine's: its steps are cheaper, and a violation takes more of them."""
pytestmark = pytest.mark.timeout(max(900, 10 * EXAMPLES))
"""Room for Hypothesis to shrink a failure (it gives up after 5 minutes)."""

POOL = sample.records(files=1, points=30, seed=11).drop("file")
"""30 fixed records (coordinate, distance, bearing): files draw from them, so they share."""
NAMES = ("a.txt", "b.txt", "c.txt", "d.txt")
FIRST_MTIME = 1_600_000_000
"""Mtimes are in the past (every file is final at once with ``final_seconds=0``), one apart."""

records_of = st.lists(st.integers(0, len(POOL) - 1), max_size=8)
index = st.integers(0, 63)
"""Which file or message: taken modulo how many there are."""


def note_event(text: str) -> None:
    """Count ``text`` in Hypothesis's statistics (when the machine runs under Hypothesis)."""
    if currently_in_test_context():
        event(text)


def render(records: list[int]) -> bytes:
    """The data_points bytes of these records of :data:`POOL`."""
    return sample.render(POOL[records])


@functools.lru_cache(maxsize=4096)
def coordinates(content: bytes) -> frozenset[tuple[float, float]]:
    """The distinct valid coordinates of a file's content, at 8 decimals."""
    points = parse.parse(content, "f.txt").points
    return _pairs(points)


@functools.lru_cache(maxsize=4096)
def geocode_keys(content: bytes) -> frozenset[tuple[int, int]]:
    """The distinct coordinates of a file's content at the geocode precision (6 decimals)."""
    points = parse.parse(content, "f.txt").points
    keys = points.select(frames.scaled_key(pl.col(c), 6) for c in ("latitude", "longitude"))
    return frozenset(keys.iter_rows())


def _pairs(frame: pl.DataFrame) -> frozenset[tuple[float, float]]:
    """The (latitude, longitude) pairs of ``frame``, rounded to 8 decimals."""
    rounded = frame.select(pl.col("latitude").round(8), pl.col("longitude").round(8))
    return frozenset(rounded.iter_rows())


@dataclasses.dataclass
class FileModel:
    """What the test knows of one file."""

    content: bytes
    """Its latest content."""
    records: list[int]
    """The records of its latest whole write (none once truncated)."""
    loaded: bytes | None = None
    """The content of its current loaded version (None: never loaded)."""

    def same_as_loaded(self) -> bool:
        """Whether its latest content is the loaded one."""
        return self.content == self.loaded

    def held(self) -> bool:
        """Whether its latest content is empty or a prefix of the loaded one as etl4all
        tells it (docs/guarantees.md): shorter, the same first 64 bytes, and the same bytes
        up to the last checkpoint of the loaded version it reaches."""
        loaded, content = self.loaded, self.content
        if loaded is None or content == loaded or len(content) >= len(loaded):
            return False
        if not loaded.startswith(content[: fingerprint.HEAD]):
            return False
        points = fingerprint.offsets(fingerprint.block_for(len(loaded)), len(loaded))
        reached = [at for at in points if at <= len(content)]
        return not reached or content[: reached[-1]] == loaded[: reached[-1]]


@dataclasses.dataclass(frozen=True)
class Warehouse:
    """What the warehouse holds: addresses and which files hold each coordinate."""

    addresses: pl.DataFrame
    """``latitude``, ``longitude`` (8 decimals), ``source_file``."""
    members: pl.DataFrame
    """``file_id``, ``name``, ``latitude``, ``longitude`` of ``address_source``."""


def read_warehouse(url: str) -> Warehouse:
    """The address and address_source tables (a plain connection: the broker machine's
    loader keeps the file open in this process)."""
    with duckdb.connect(urls.file_path(url)) as con:
        addresses = con.sql(
            "SELECT round(CAST(latitude AS DOUBLE), 8) AS latitude,"
            " round(CAST(longitude AS DOUBLE), 8) AS longitude, source_file FROM address"
        ).pl()
        members = con.sql(
            "SELECT m.file_id, f.name, round(CAST(m.latitude AS DOUBLE), 8) AS latitude,"
            " round(CAST(m.longitude AS DOUBLE), 8) AS longitude"
            " FROM address_source AS m LEFT JOIN source_file AS f ON f.id = m.file_id"
        ).pl()
    return Warehouse(addresses, members)


class FileLife(RuleBasedStateMachine):
    """File events and the oracle; the drivers (subclasses) say how the files are run."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="etl4all-life-"))
        self.folder = self.tmp / "in"
        self.folder.mkdir()
        self.settings = Settings(
            warehouse_url=f"duckdb:///{self.tmp}/w.duckdb",
            state_url=f"sqlite:///{self.tmp}/s.db",
            final_seconds=0,
            claim_wait=0,
            geocoder="offline",
        )
        self.files: dict[str, FileModel] = {}
        self.written: set[bytes] = set()
        """Every content ever written."""
        self.mtime = FIRST_MTIME

    def teardown(self) -> None:
        """Remove the example's folder, state and warehouse."""
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- writing files ------------------------------------------------------------------

    def write(self, name: str, content: bytes, records: list[int]) -> None:
        """Write ``content`` to ``name`` with a new mtime; remember it."""
        path = self.folder / name
        path.write_bytes(content)
        self.mtime += 1
        os.utime(path, (self.mtime, self.mtime))
        model = self.files.setdefault(name, FileModel(content, records))
        model.content, model.records = content, list(records)
        self.written.add(content)

    def pick(self, which: int) -> str:
        """One of the files written so far."""
        names = sorted(self.files)
        return names[which % len(names)]

    def has_files(self) -> bool:
        """Whether a file was written."""
        return bool(self.files)

    def has_room(self) -> bool:
        """Whether a name is still free."""
        return len(self.files) < len(NAMES)

    # -- file events --------------------------------------------------------------------

    @initialize(files=st.lists(records_of, min_size=1, max_size=3))
    def start(self, files: list[list[int]]) -> None:
        """A few files, loaded."""
        for records in files:
            self.add_file(records)
        self.settle_all()

    @precondition(has_room)
    @rule(records=records_of)
    def add_file(self, records: list[int]) -> None:
        """A new file arrives."""
        name = next(n for n in NAMES if n not in self.files)
        self.write(name, render(records), records)

    @precondition(has_files)
    @rule(
        which=index,
        drop=st.sets(st.integers(0, 7), max_size=4),
        new=records_of.map(lambda r: r[:5]),
        at=st.integers(0, 8),
    )
    def replace_file(self, which: int, drop: set[int], new: list[int], at: int) -> None:
        """A new version replaces a file: some records dropped, some added at ``at``
        (an append when nothing is dropped and ``at`` is the end)."""
        name = self.pick(which)
        kept = [r for i, r in enumerate(self.files[name].records) if i not in drop]
        at = min(at, len(kept))
        records = kept[:at] + new + kept[at:]
        self.write(name, render(records), records)

    @precondition(has_files)
    @rule(which=index)
    def truncate_file(self, which: int) -> None:
        """A file becomes empty (a failed transfer)."""
        self.write(self.pick(which), b"", [])

    @precondition(has_files)
    @rule(which=index, cut=st.integers(0, 2000))
    def half_then_whole(self, which: int, cut: int) -> None:
        """A file is uploaded again: first a byte prefix of its content, then all of it."""
        name = self.pick(which)
        model = self.files[name]
        whole, records = model.content, model.records
        half = whole[: cut % len(whole)] if whole else b""
        self.write(name, half, records)
        self.half_uploaded()
        self.write(name, whole, records)
        self.half_uploaded()

    @precondition(has_files)
    @rule(which=index, to=st.sampled_from(NAMES))
    def copy_file(self, which: int, to: str) -> None:
        """A file is copied under another name (a new file, or over another one)."""
        name = self.pick(which)
        if to == name:
            to = NAMES[(NAMES.index(name) + 1) % len(NAMES)]
        model = self.files[name]
        self.write(to, model.content, model.records)

    def half_uploaded(self) -> None:
        """What the driver does between the two writes of :meth:`half_then_whole`."""
        raise NotImplementedError

    def settle_all(self) -> None:
        """Run the driver until every file is taken and every message delivered; check."""
        raise NotImplementedError

    # -- the oracle ---------------------------------------------------------------------

    def advance(self, done: Callable[[str], bool] = lambda name: True) -> set[str]:
        """The files taken by a run (those ``done`` says completed): their current loaded
        version becomes their content unless they are held; the names of those held."""
        held = set()
        for name, model in self.files.items():
            if not done(name) or model.content == model.loaded:
                continue
            if model.held():
                held.add(name)
            else:
                model.loaded = model.content
        return held

    def check(self) -> None:
        """The warehouse equals the current loaded versions of the files."""
        found = read_warehouse(self.settings.warehouse_url)
        holds = {
            name: coordinates(model.loaded)
            for name, model in self.files.items()
            if model.loaded is not None
        }
        expected = frozenset().union(*holds.values())
        rows = found.addresses
        assert rows.height == rows.select("latitude", "longitude").n_unique(), (
            "duplicate (latitude, longitude) in address"
        )
        have = _pairs(rows)
        assert have == expected, (
            f"address rows nobody holds: {sorted(have - expected)}; "
            f"missing: {sorted(expected - have)}; files: {self.describe()}"
        )
        members = found.members
        key = ("file_id", "latitude", "longitude")
        assert members.height == members.select(key).n_unique(), (
            "duplicate (file_id, latitude, longitude) in address_source"
        )
        wrong = [
            (name, lat, lon)
            for lat, lon, name in rows.iter_rows()
            if (lat, lon) not in holds.get(name, frozenset())
        ]
        assert not wrong, f"source_file does not hold the row's coordinate: {wrong}"
        by_file = {
            str(name): _pairs(part)
            for (name,), part in members.group_by("name")  # a null name fails below
        }
        assert by_file == {name: pairs for name, pairs in holds.items() if pairs}, (
            "address_source differs from the files' current loaded versions"
        )

    def describe(self) -> str:
        """The files' latest and loaded contents, briefly."""
        return "; ".join(
            f"{name}: {len(m.content)} bytes {sorted(coordinates(m.content))}, loaded "
            f"{None if m.loaded is None else len(m.loaded)} bytes"
            for name, m in sorted(self.files.items())
        )


class EmbeddedFileLife(FileLife):
    """The file events lived through ``etl4all run`` (one process, items in order)."""

    @rule()
    def run_once(self) -> None:
        """Run over the folder; then the warehouse equals the files."""
        self.run_and_check()

    def half_uploaded(self) -> None:
        """A run (checked)."""
        self.run_and_check()

    def settle_all(self) -> None:
        """A run (checked)."""
        self.run_and_check()

    def run_and_check(self) -> None:
        """One run, then :meth:`verify`."""
        summary = run([str(self.folder)], self.settings)
        self.verify(summary, self.advance())

    def verify(self, summary: RunSummary, held: set[str]) -> None:
        """The run held the files expected (``held``), and the oracle holds."""
        assert {h.name for h in summary.held} == held, (
            f"held {[str(h) for h in summary.held]}, expected {sorted(held)}"
        )
        self.check()


@dataclasses.dataclass(frozen=True)
class Message:
    """A message taken off the in-process broker."""

    queue: str
    body: bytes
    headers: dict[str, Any]

    def __repr__(self) -> str:
        h = self.headers
        return f"<{h.get('schema')} {h.get(SOURCE_HEADER)} v{h.get(VERSION_HEADER)}>"


KINDS = ("points", "addresses", "rejects", "prune", "prune_rejects")
"""The kinds of message (``schema`` header)."""


class Wire:
    """The broker as extract and transform see it: every message goes through the
    in-process broker and is taken off at once, in publishing order; it can fail (a lost
    connection) before the ``fail_at``-th publish."""

    def __init__(self, broker: MemoryBroker, sent: list[Message]) -> None:
        self.broker = broker
        self.topology = broker.topology
        self.sent = sent
        self.fail_at: int | None = None
        """Publishes (of the kinds ``fail_on``) left before the broker fails."""
        self.fail_on: tuple[str, ...] = ()
        self.failed: str | None = None
        """The file whose message failed."""

    def publish(self, queue: str, body: bytes, headers: dict[str, Any]) -> None:
        """Publish one message (taken off the broker at once into ``sent``)."""
        if self.fail_at is not None and headers[SCHEMA_HEADER] in self.fail_on:
            if self.fail_at == 0:
                self.failed = str(headers[SOURCE_HEADER])
                raise BrokerError("connection lost (test)")
            self.fail_at -= 1
        self.broker.publish(queue, body, headers)
        for delivery in self.broker.consume(queue, timeout=0):  # just this one
            kept = {k: v for k, v in delivery.headers.items() if k != DELIVERY_COUNT_HEADER}
            self.sent.append(Message(queue, delivery.body, kept))
            delivery.ack()


class BrokerFileLife(FileLife):
    """The file events lived through the broker driver, the test delivering the messages."""

    def __init__(self) -> None:
        super().__init__()
        self.stack = contextlib.ExitStack()
        self.broker = self.stack.enter_context(MemoryBroker())
        self.pending: list[Message] = []
        """Messages published and not delivered (acked) yet."""
        self.delivered: list[Message] = []
        self.unfinished: set[str] = set()
        """Files with a version left half published by a crashed extract (statistics)."""
        self.wire = Wire(self.broker, self.pending)
        source = self.stack.enter_context(wiring.open_source(str(self.folder), self.settings))
        ledger = self.stack.enter_context(wiring.open_state(self.settings))
        self.extractor = Extractor(
            source=source, ledger=ledger, config=wiring.extract_config(self.settings)
        )
        assert not self.extractor.config.ordered  # prunes by keys
        self.transform = transform_handler(self.settings, self.wire, self.stack, CallBudget())  # type: ignore[arg-type]
        self.load = load_handler(self.settings, self.stack)

    def teardown(self) -> None:
        """Close the backends, then remove the example's files."""
        self.stack.close()
        super().teardown()

    def extract(self, fail_at: int | None = None, fail_on: tuple[str, ...] = ()) -> set[str]:
        """One extract pass over the folder (its messages join the pending ones); the
        names of the files it held. With ``fail_at``, the broker fails before that
        publish (counting messages of the kinds ``fail_on``): the file then being
        published is left unfinished, later ones untaken."""
        held_before = len(self.extractor.stats.held)
        refs = self.extractor.pending(self.extractor.listing())
        sent = len(self.pending)
        self.wire.fail_at, self.wire.fail_on, self.wire.failed = fail_at, fail_on, None
        try:
            _publish_files(self.extractor, self.wire, stop_never(), self.settings, refs)  # type: ignore[arg-type]
        except BrokerError:
            assert self.wire.failed is not None
        finally:
            self.wire.fail_at = None
        failed = self.wire.failed
        if any(m.headers[SOURCE_HEADER] == failed for m in self.pending[sent:]):
            note_event("extract: a file version left half published")
            self.unfinished.add(str(failed))
        taken = {r.name for r in refs if failed is None or r.name < failed} & self.unfinished
        stuck = {n for n in taken if self.files[n].held() or self.files[n].same_as_loaded()}
        if stuck:
            note_event("extract: no new version supersedes a half-published one (held or same)")
        self.unfinished -= taken - stuck
        held = self.advance(lambda name: failed is None or name < failed)
        # A long-lived extractor names a held file once per content, not on every pass.
        named = {h.name for h in self.extractor.stats.held[held_before:]}
        ever = {h.name for h in self.extractor.stats.held}
        assert named <= held, f"held {sorted(named)}, expected {sorted(held)}"
        assert held <= ever, f"held files never named: {sorted(held - ever)}"
        return held

    def deliver(self, message: Message) -> None:
        """Handle ``message`` as its stage's consumer does before acking it."""
        frame = batch.decode(message.body, message.headers)
        if message.queue == self.broker.topology.points:
            self.transform(frame, message.headers)
        else:
            self.load(frame, message.headers)

    def has_pending(self) -> bool:
        """Whether a message waits for delivery."""
        return bool(self.pending)

    def half_uploaded(self) -> None:
        """Extract only: the messages wait."""
        self.extract()

    @rule(crash=st.none() | st.tuples(st.integers(0, 3), st.sampled_from(["any message", "prune"])))
    def extract_files(self, crash: tuple[int, str] | None) -> None:
        """Extract publishes what changed; nothing is delivered yet. With ``crash``
        ``(n, on)``, the broker connection drops before the pass's n-th message, or its
        n-th prune (when every batch of that file version is out)."""
        if crash is None:
            self.extract()
        else:
            fail_at, on = crash
            self.extract(fail_at, ("prune", "prune_rejects") if on == "prune" else KINDS)

    @precondition(has_pending)
    @rule(
        which=index,
        how=st.sampled_from(["ack", "ack lost", "crash before commit", "replay"]),
    )
    def deliver_one(self, which: int, how: str) -> None:
        """A pending message is delivered (the others are held back): handled and acked;
        or handled but its ack lost (the consumer died after the commit: it stays pending);
        or its handler raised before the commit (nothing applied: it comes again after the
        others); or, instead, one delivered long ago comes again (a dead letter replayed)."""
        at = which % len(self.pending)
        if how == "ack":
            message = self.pending.pop(at)
            self.deliver(message)
            self.delivered.append(message)
        elif how == "ack lost":
            self.deliver(self.pending[at])
        elif how == "crash before commit":
            self.pending.append(self.pending.pop(at))
        elif self.delivered:
            self.deliver(self.delivered[which % len(self.delivered)])

    def settle_all(self) -> None:
        """Settle in publishing order."""
        self.settle("fifo")

    @rule(order=st.sampled_from(["fifo", "lifo"]))
    def settle(self, order: str) -> None:
        """Extract, then deliver every pending message (and what they publish) in
        ``order``; then the warehouse equals the files."""
        self.extract()
        while self.pending:
            message = self.pending.pop(0 if order == "fifo" else -1)
            self.deliver(message)
            self.delivered.append(message)
        self.check()


def stop_never() -> threading.Event:
    """An event nobody sets."""
    return threading.Event()


TestEmbeddedFileLife = EmbeddedFileLife.TestCase
TestEmbeddedFileLife.settings = LIFE

TestBrokerFileLife = BrokerFileLife.TestCase
TestBrokerFileLife.settings = BROKER_LIFE


FOUND: dict[str, list[tuple[str, dict[str, Any]]]] = {
    # The broker fails once a new version's batches are out, before its prune; the file is
    # then truncated (held) or restored to the version loaded (skipped as unchanged): no
    # later version prunes what the batches of the version cut short loaded.
    "cut short, then truncated": [
        ("start", {"files": [[0, 1]]}),
        ("replace_file", {"which": 0, "drop": {0, 1}, "new": [2, 3], "at": 0}),
        ("extract_files", {"crash": (0, "prune")}),
        ("truncate_file", {"which": 0}),
        ("settle", {"order": "fifo"}),
    ],
    "cut short, then restored": [
        ("start", {"files": [[0, 1]]}),
        ("replace_file", {"which": 0, "drop": {0, 1}, "new": [2, 3], "at": 0}),
        ("extract_files", {"crash": (0, "prune")}),
        ("replace_file", {"which": 0, "drop": {0, 1}, "new": [0, 1], "at": 0}),
        ("settle", {"order": "fifo"}),
    ],
    # A version that only appends to the one before has no prune of its own: when its batch
    # comes first, the prune of the version before is stale and what it drops stays.
    "grown version delivered first": [
        ("start", {"files": [[0, 1]]}),
        ("replace_file", {"which": 0, "drop": {0, 1}, "new": [2], "at": 0}),
        ("extract_files", {"crash": None}),
        ("replace_file", {"which": 0, "drop": set(), "new": [3], "at": 1}),
        ("extract_files", {"crash": None}),
        ("settle", {"order": "lifo"}),
    ],
    # 16 bytes of a new version (shorter than the first checkpoint, 64 bytes) are taken
    # for a prefix of the version loaded, though they differ from it: held, not loaded.
    "a short half of another version": [
        ("start", {"files": [[1]]}),
        ("replace_file", {"which": 0, "drop": set(), "new": [0], "at": 0}),
        ("half_then_whole", {"which": 0, "cut": 16}),
    ],
}
"""Sequences of :class:`BrokerFileLife` rules that break the oracle (found exploring the
machine, shrunk by hand), replayed as they are: random search reaches some rarely."""


@pytest.mark.parametrize("name", list(FOUND))
def test_a_sequence_found_by_the_broker_machine(name: str) -> None:
    """Replay ``FOUND[name]``: the oracle must hold after it."""
    machine = BrokerFileLife()
    try:
        for rule_name, arguments in FOUND[name]:
            getattr(machine, rule_name)(**arguments)
    finally:
        machine.teardown()


class PaidFileLife(EmbeddedFileLife):
    """The embedded machine with the fake Google API: nothing is paid for twice."""

    api: FakeApi

    def __init__(self) -> None:
        super().__init__()
        api = self.api
        self.settings = self.settings.replace(
            geocoder="google", google_key=api.key, google_url=api.google_url, qps=500.0
        )
        self.calls_before = api.calls

    def verify(self, summary: RunSummary, held: set[str]) -> None:
        """The API calls so far are at most the distinct coordinates ever written (the
        warehouse itself is the other machines' business)."""
        distinct = frozenset().union(*(geocode_keys(c) for c in self.written))
        calls = self.api.calls - self.calls_before
        assert calls <= len(distinct), f"{calls} API calls for {len(distinct)} coordinates"


def test_a_coordinate_is_paid_for_once_through_a_files_life() -> None:
    """API calls never exceed the distinct coordinates (6 decimals) ever written."""
    with FakeApi() as api:
        PaidFileLife.api = api
        run_state_machine_as_test(
            PaidFileLife,
            settings=settings(LIFE, max_examples=max(EXAMPLES // 4, 3)),
        )
