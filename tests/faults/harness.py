"""The fault suite's harness: one services pipeline per test, its faults, its checks, its figures.

A :class:`Pipeline` owns everything a scenario runs against:

- input files with a known set of coordinates (:meth:`Pipeline.put_files`), served by a real
  pyftpdlib server; what they should give (:class:`Expected`) is read back from the files;
- the Google-format :class:`~geocoders.fake_api.FakeApi` (it counts calls per coordinate);
- the worker processes, ``etl4all run-stage extract|transform|load``, kept running by a
  :class:`Fleet` that restarts a worker that exited, as compose's ``restart: unless-stopped``
  does (100 ms, doubling while the worker keeps dying young); an exit that the scenario did not
  cause or allow fails the test at once, with the workers' logs;
- a :class:`Probe` on RabbitMQ, MariaDB and Redis over direct connections (never through the
  proxy a scenario cuts), which every wait polls: no fixed sleeps, every wait has a deadline,
  and a dead letter the scenario does not expect fails the wait at once;
- :meth:`Pipeline.drain` (stop the extractors once every file is done, let the queues drain,
  stop the consumers with SIGTERM) and :meth:`Pipeline.verify`, the checks every scenario ends
  with: warehouse rows == distinct valid coordinates, no duplicate key, every address column
  as the fake API answered, the rejects of the files, queues drained, dead letters as expected,
  API calls within a bound; it returns the scenario's figures line.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import polars as pl
import pymysql
import pytest
import redis
from geocoders.fake_api import FINAL_ANSWERS, FakeApi, coord, expected_row
from sources.ftp_server import FtpTestServer

from etl4all import frames, sample
from etl4all.broker.base import BATCH_ID_HEADER, ERROR_HEADER
from etl4all.operations.check import CHECK_POINT
from etl4all.parsing import parse
from etl4all.runners import wiring
from etl4all.settings import Settings
from etl4all.stages.transform import distinct_keys
from etl4all.state.base import FileMark
from etl4all.warehouse.read import read_warehouse

MARKS = [
    pytest.mark.faults,
    pytest.mark.mysql,
    pytest.mark.redis,
    pytest.mark.rabbitmq,
    pytest.mark.slow,
]
"""Every fault test needs the three services and starts several processes."""

STAGES = ("extract", "transform", "load")
READY = {"extract": "extract watching", "transform": "worker consuming", "load": "worker consuming"}
"""The log line a worker writes once it is connected and taking work."""
ADDRESS_COLUMNS = [*frames.ADDRESS_FIELDS, "geocode_status"]
PRECISION = 6
"""The workers' geocode precision (the default): API calls are counted against these keys."""
POLL = 0.1
"""Seconds between two looks of a wait."""
QUIET = 1.0
"""Seconds nothing may move (queues, rows, API calls) before the pipeline counts as idle."""
FORGET = """
local keys = redis.call('KEYS', ARGV[1])
for i = 1, #keys, 1000 do
  redis.call('DEL', unpack(keys, i, math.min(i + 999, #keys)))
end
return #keys
"""
"""Delete the keys that match ``ARGV[1]`` (the state's prefix, no glob character in it),
atomically."""


def figure(n: float) -> str:
    """``47533`` → ``47,533``."""
    return f"{n:,.0f}"


# -- inputs ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Expected:
    """What the files of a folder must give: computed with the parser, like the workers."""

    coordinates: pl.DataFrame
    """Distinct valid (latitude, longitude), at 8 decimals."""
    keys: int
    """Distinct coordinates at the geocode precision: the API calls a perfect run makes."""
    rejects: pl.DataFrame
    """``source_file``, ``source_line``, ``reason`` of every parse reject."""
    files: int

    @classmethod
    def of(cls, folder: Path) -> Expected:
        """The expectation for the ``*.txt`` files of ``folder``."""
        parsed = [parse.parse(p.read_bytes(), p.name) for p in sorted(folder.glob("*.txt"))]
        points = pl.concat([r.points for r in parsed])
        rejects = pl.concat([r.rejects for r in parsed]).select(
            source_file="source", source_line=pl.col("line").cast(pl.Int64), reason="reason"
        )
        return cls(
            coordinates=points.select(pl.col("latitude", "longitude").round(8)).unique(),
            keys=distinct_keys(points, PRECISION).height,
            rejects=rejects,
            files=len(parsed),
        )


def write_files(
    folder: Path, *, prefix: str, files: int, points: int, seed: int, **options: Any
) -> list[Path]:
    """Write ``files`` sample files (:func:`etl4all.sample.records`) named ``PREFIX_...``.

    Each file is written beside its final name and renamed into place, so a poller never
    sees it half written, and its last record is whole (with its Distance line), so the
    file is complete as soon as it is there. ``options``: ``dirty_rate``, ``duplicate_rate``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    table = sample.records(files=files, points=points, seed=seed, **options)
    last = pl.int_range(pl.len()).over("file") == pl.len().over("file") - 1
    # a file ending in a record without its Distance line is complete only once final
    table = table.with_columns(drop=pl.when(last).then(None).otherwise(pl.col("drop")))
    paths = []
    for (name,), part in table.group_by("file", maintain_order=True):
        path = folder / f"{prefix}_{name}"
        partial = path.with_suffix(".part")
        partial.write_bytes(sample.render(part))
        os.replace(partial, path)
        paths.append(path)
    return paths


# -- the workers -----------------------------------------------------------------------------


@dataclasses.dataclass(eq=False)
class Worker:
    """One replica of a stage and its history (one log file across its restarts)."""

    stage: str
    index: int
    log: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    started_at: float = 0.0
    exits: list[int] = dataclasses.field(default_factory=list)
    killed: bool = False
    """The test killed the current process: its exit is expected."""
    restart_at: float | None = None
    quick_deaths: int = 0

    @property
    def name(self) -> str:
        """``transform-0``."""
        return f"{self.stage}-{self.index}"

    def start(self) -> None:
        """Start a new process; its output goes to :attr:`log`."""
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"=== {self.name} start {self.starts} ===\n".encode())
            self.process = subprocess.Popen(
                [sys.executable, "-m", "etl4all", "run-stage", self.stage],
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.started_at = time.monotonic()
        self.killed = False
        self.restart_at = None

    def output(self) -> str:
        """What the current process wrote so far."""
        text = self.log.read_text(errors="replace")
        return text.rpartition(f"=== {self.name} start {self.starts} ===\n")[2]

    def ready(self) -> bool:
        """Whether the current process is running and taking work."""
        alive = self.process is not None and self.process.poll() is None
        return alive and READY[self.stage] in self.output()

    def tail(self, lines: int = 12) -> str:
        """The last lines of the log."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


ExitPolicy = Callable[[Worker, int], bool]
"""``allowed(worker, returncode)``: whether an exit the test did not cause is expected."""


def no_exit(worker: Worker, returncode: int) -> bool:
    """The default policy: no worker exits by itself."""
    return False


class Fleet:
    """Worker processes restarted when they exit, as compose's ``restart: unless-stopped``.

    A background thread looks at them every 50 ms. The restart delay starts at 100 ms and
    doubles while the worker keeps dying within 10 s of its start (Docker's policy, capped
    at 3.2 s). An exit that neither :meth:`kill` nor ``allowed`` explains is recorded in
    :attr:`failures`; :meth:`check` raises it.
    """

    def __init__(self, logs: Path, allowed: ExitPolicy = no_exit) -> None:
        self.logs = logs
        self.logs.mkdir(parents=True, exist_ok=True)
        self.allowed = allowed
        self.workers: list[Worker] = []
        self.failures: list[str] = []
        self.restarts: collections.Counter[str] = collections.Counter()
        self.kills: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="fleet", daemon=True)

    def start(self, env: dict[str, str], **replicas: int) -> None:
        """Start ``replicas`` (``extract=1, transform=1, load=1``) workers with ``env``."""
        with self._lock:
            for stage in STAGES:
                for index in range(replicas.get(stage, 1)):
                    worker = Worker(stage, index, self.logs / f"{stage}-{index}.log", dict(env))
                    worker.start()
                    self.workers.append(worker)
        if not self._thread.is_alive():
            self._thread.start()

    def of(self, stage: str) -> list[Worker]:
        """The workers of ``stage``."""
        return [w for w in self.workers if w.stage == stage]

    def kill(self, worker: Worker, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the worker's current process; its exit is expected."""
        with self._lock:
            assert worker.process is not None and worker.process.poll() is None, worker.name
            worker.killed = True
            worker.process.send_signal(sig)
            self.kills.append(worker.name)

    def pause(self, worker: Worker) -> None:
        """SIGSTOP the worker (it keeps its connections and its unacked messages)."""
        assert worker.process is not None
        worker.process.send_signal(signal.SIGSTOP)

    def resume(self, worker: Worker) -> None:
        """SIGCONT after :meth:`pause`."""
        assert worker.process is not None
        worker.process.send_signal(signal.SIGCONT)

    def check(self) -> None:
        """Raise if a worker exited unexpectedly."""
        if self.failures:
            raise AssertionError("; ".join(self.failures) + "\n" + self.logs_tail())

    def stop(self, stage: str | None = None, timeout: float = 90.0) -> None:
        """SIGTERM the workers (of ``stage``, or all) and wait; each must exit 0."""
        with self._lock:
            chosen = [w for w in self.workers if stage is None or w.stage == stage]
            for worker in chosen:
                worker.restart_at = None
                self.workers.remove(worker)
        for worker in chosen:
            assert worker.process is not None
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGCONT)
                worker.process.send_signal(signal.SIGTERM)
        for worker in chosen:
            assert worker.process is not None
            try:
                code = worker.process.wait(timeout)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                raise AssertionError(
                    f"{worker.name} did not stop on SIGTERM\n{worker.tail()}"
                ) from None
            assert code == 0 or worker.killed, (
                f"{worker.name} exited {code} on SIGTERM\n{worker.tail(30)}"
            )
        if stage is None:
            self._stop.set()
            self._thread.join(5)

    def close(self) -> None:
        """Kill whatever still runs (a failed test)."""
        self._stop.set()
        with self._lock:
            for worker in self.workers:
                if worker.process is not None and worker.process.poll() is None:
                    worker.process.kill()
                    worker.process.wait(10)

    def logs_tail(self) -> str:
        """The last lines of every worker's log."""
        return "\n".join(f"--- {w.name} ---\n{w.tail()}" for w in self.workers)

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            with self._lock:
                for worker in self.workers:
                    self._look_after(worker)

    def _look_after(self, worker: Worker) -> None:
        assert worker.process is not None
        now = time.monotonic()
        if worker.restart_at is not None:
            if now >= worker.restart_at:
                worker.start()
                self.restarts[worker.stage] += 1
            return
        code = worker.process.poll()
        if code is None:
            return
        worker.exits.append(code)
        if not worker.killed and not self.allowed(worker, code):
            self.failures.append(f"{worker.name} exited {code} by itself")
        young = now - worker.started_at < 10.0
        worker.quick_deaths = worker.quick_deaths + 1 if young and not worker.killed else 0
        worker.restart_at = now + min(0.1 * 2**worker.quick_deaths, 3.2)


# -- looking at the services -----------------------------------------------------------------


class Probe:
    """Direct connections to the pipeline's RabbitMQ queues, MariaDB tables and Redis keys."""

    def __init__(self, env: dict[str, str]) -> None:
        self.settings = Settings.load(environ=env)
        self.bus = wiring.open_broker(self.settings)
        self.topology = self.bus.topology
        parts = urlsplit(env["ETL4ALL_WAREHOUSE_URL"])
        self._db = pymysql.connect(
            host=parts.hostname,
            port=parts.port or 3306,
            user=parts.username or "root",
            password=parts.password or "",
            database=parts.path.strip("/"),
            autocommit=True,
        )
        state = urlsplit(env["ETL4ALL_STATE_URL"])
        self.prefix = dict(p.split("=", 1) for p in state.query.split("&") if p)["prefix"]
        self.redis = redis.Redis.from_url(state._replace(query="").geturl())

    def depths(self) -> dict[str, int]:
        """Ready messages of the points, addresses and dead-letter queues."""
        t = self.topology
        return {
            "points": self.bus.depth(t.points),
            "addresses": self.bus.depth(t.addresses),
            "dead": self.bus.depth(t.dead),
        }

    def count(self, table: str) -> int:
        """Rows of ``table`` (``address`` or ``reject``)."""
        with self._db.cursor() as cur:
            cur.execute(f"SELECT COUNT(*) FROM `{table}`")
            return int(cur.fetchone()[0])

    def rejects(self) -> pl.DataFrame:
        """``source_file``, ``source_line``, ``reason`` of the reject table."""
        with self._db.cursor() as cur:
            cur.execute("SELECT source_file, source_line, reason FROM reject")
            rows = cur.fetchall()
        schema = {"source_file": pl.String, "source_line": pl.Int64, "reason": pl.String}
        return pl.DataFrame(list(rows), schema=schema, orient="row")

    def done(self) -> int:
        """Files marked done in the state."""
        return int(self.redis.hlen(f"{self.prefix}done"))

    def done_sizes(self) -> dict[str, int]:
        """File name → size of the version marked done as a whole (not without a cut-off
        tail: ``partial_since`` unset)."""
        marks = {
            key.decode().rpartition("/")[2]: FileMark.from_json(value.decode())
            for key, value in self.redis.hgetall(f"{self.prefix}done").items()
        }
        return {name: mark.size for name, mark in marks.items() if mark.partial_since is None}

    def is_done(self, name: str) -> bool:
        """Whether the file called ``name`` is marked done (in any version)."""
        return name in self.done_sizes()

    def claims(self) -> list[str]:
        """The claim keys held now (each names its file)."""
        return [key.decode() for key in self.redis.keys(f"{self.prefix}claim:*")]

    def forget_state(self) -> int:
        """Delete every key of the pipeline's state at once (one Lua script: no worker writes
        in between), as a FLUSHDB of a database of its own would; the keys deleted."""
        return int(self.redis.eval(FORGET, 0, self.prefix + "*"))

    def dead_letters(self) -> list[str]:
        """The reasons of the first dead letters (a consumer of its own, closed after: every
        letter goes back to the queue)."""
        reasons = []
        with wiring.open_broker(self.settings) as bus:
            for letter in bus.consume(self.topology.dead, timeout=1):
                headers = letter.headers
                reason = headers.get(ERROR_HEADER) or headers.get("x-first-death-reason", "?")
                reasons.append(f"{headers.get(BATCH_ID_HEADER)}: {reason}"[:300])
                if len(reasons) >= 5:
                    break
        return reasons

    def close(self) -> None:
        """Close the connections."""
        self.bus.close()
        self._db.close()
        self.redis.close()


# -- the pipeline ----------------------------------------------------------------------------


class Pipeline:
    """The services pipeline of one fault test; see the module docstring."""

    def __init__(
        self,
        root: Path,
        *,
        unique: str,
        mysql_url: str,
        redis_url: str,
        amqp_url: str,
    ) -> None:
        self.root = root
        self.folder = root / "ftp"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.started = time.monotonic()
        self.expected_dead = 0
        self.allowed: ExitPolicy = no_exit
        self._stack = contextlib.ExitStack()
        self.ftp = self._stack.enter_context(FtpTestServer(self.folder))
        self.api = self._stack.enter_context(FakeApi(latency=0.005))
        self.urls = {"broker": amqp_url, "warehouse": mysql_url, "state": redis_url}
        self.env = {
            "ETL4ALL_SOURCE_URL": self.ftp.url,
            "ETL4ALL_BROKER_URL": amqp_url,
            "ETL4ALL_QUEUE_PREFIX": f"etl4all-fault-{unique}",
            "ETL4ALL_STATE_URL": redis_url,
            "ETL4ALL_WAREHOUSE_URL": mysql_url,
            "ETL4ALL_LOOKUP_URL": "mongomock://localhost/etl4all",
            "ETL4ALL_SETTLE_SECONDS": "0.3",
            "ETL4ALL_POLL_INTERVAL": "0.5",
            "ETL4ALL_BATCH_ROWS": "100",
            "ETL4ALL_GEOCODER": "google",
            "ETL4ALL_GOOGLE_URL": self.api.google_url,
            "GOOGLE_MAPS_API_KEY": self.api.key or "",
            "ETL4ALL_QPS": "400",
            "ETL4ALL_CONCURRENCY": "8",
        }
        direct = {**self.env, "ETL4ALL_BROKER_URL": amqp_url, "ETL4ALL_WAREHOUSE_URL": mysql_url}
        with wiring.open_warehouse(Settings.load(environ=direct)) as wh:
            wh.init()
        self.probe = self._stack.enter_context(contextlib.closing(Probe(direct)))
        self.fleet: Fleet | None = None
        self.record: Callable[[str], None] = lambda line: None
        """Where :meth:`report` records the figures line (for the report and the JUnit XML)."""

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.fleet is not None:
                self.fleet.close()
            with contextlib.suppress(Exception):
                self.probe.bus.delete()
        finally:
            self._stack.close()

    # -- inputs ------------------------------------------------------------------------------

    def put_files(self, *, files: int, points: int, seed: int, prefix: str = "f") -> list[Path]:
        """Write sample files into the FTP folder (2 % dirty records, 10 % repeated points)."""
        return write_files(
            self.folder,
            prefix=prefix,
            files=files,
            points=points,
            seed=seed,
            dirty_rate=0.02,
            duplicate_rate=0.1,
        )

    def stage_files(self, *, files: int, points: int, seed: int, prefix: str) -> list[Path]:
        """Like :meth:`put_files` but into a side folder: :meth:`publish` moves one in."""
        return write_files(
            self.root / "staged",
            prefix=prefix,
            files=files,
            points=points,
            seed=seed,
            dirty_rate=0.02,
            duplicate_rate=0.1,
        )

    def publish(self, path: Path) -> None:
        """Move a staged file into the FTP folder at once (an upload that just finished)."""
        os.replace(path, self.folder / path.name)

    # -- running -----------------------------------------------------------------------------

    def start(self, *, allowed: ExitPolicy = no_exit, wait: bool = True, **replicas: int) -> Fleet:
        """Start the workers (``extract=1, transform=1, load=1`` unless given) with
        :attr:`env`; with ``wait``, wait until each takes work.

        Args:
            allowed: which exits the scenario expects (besides its kills).
        """
        self.fleet = Fleet(self.root / "logs", allowed)
        self.fleet.start(self.env, **replicas)
        if wait:
            self.wait_for("every worker to start", self.ready, 60)
        return self.fleet

    def hold(self, seconds: float, what: str) -> None:
        """Let ``seconds`` pass (a fault lasts that long), failing at once if a worker exits
        unexpectedly or a batch is dead-lettered meanwhile."""
        end = time.monotonic() + seconds
        self.wait_for(what, lambda: time.monotonic() >= end, seconds + 5)

    def extracted(self) -> int:
        """Files the extractors have parsed so far, counting every time a file was redone."""
        assert self.fleet is not None
        logs = self.fleet.logs.glob("extract-*.log")
        return sum(log.read_text(errors="replace").count("parsed file=") for log in logs)

    def ready(self) -> bool:
        """Whether every worker is running and taking work."""
        assert self.fleet is not None
        return all(w.ready() for w in self.fleet.workers)

    def wait_for(
        self, what: str, condition: Callable[[], bool], timeout: float, poll: float = POLL
    ) -> float:
        """Poll ``condition`` every ``poll`` seconds until it holds; the seconds it took.

        Raises:
            AssertionError: ``timeout`` passed, a worker exited unexpectedly, or a dead letter
                appeared that the scenario does not expect (with the workers' logs).
        """
        started = time.monotonic()
        deadline = started + timeout
        looked = 0.0
        while True:
            if self.fleet is not None:
                self.fleet.check()
            if condition():
                return time.monotonic() - started
            now = time.monotonic()
            if now - looked >= POLL:  # the dead-letter queue, at most every POLL seconds
                looked = now
                dead = self.probe.depths()["dead"]
                if dead > self.expected_dead:
                    letters = self.probe.dead_letters()
                    raise AssertionError(
                        f"{dead} dead letters while waiting for {what}: {letters}\n"
                        + self.describe()
                    )
            if now > deadline:
                raise AssertionError(
                    f"timed out after {timeout:.0f} s waiting for {what}\n" + self.describe()
                )
            time.sleep(poll)

    def expected(self) -> Expected:
        """What the files now in the FTP folder must give."""
        return Expected.of(self.folder)

    def rows(self) -> int:
        """Rows in the warehouse now."""
        return self.probe.count("address")

    def loaded_fraction(self) -> float:
        """Warehouse rows over the distinct coordinates of the files now in the folder."""
        return self.rows() / max(Expected.of(self.folder).coordinates.height, 1)

    def wait_loaded(self, fraction: float, timeout: float = 60) -> None:
        """Wait until at least ``fraction`` of the coordinates are in the warehouse."""
        want = fraction * Expected.of(self.folder).coordinates.height
        self.wait_for(f"{fraction:.0%} of the rows", lambda: self.rows() >= want, timeout)

    def drain(self, timeout: float = 120) -> None:
        """Wait until every file is done in its current version and stop the extractors;
        wait until the queues are empty, every row is loaded and nothing has moved for
        :data:`QUIET` seconds (a worker may still hold a redelivered batch); then stop the
        transformers, and the loaders once the address queue is empty (SIGTERM: each must
        exit 0)."""
        assert self.fleet is not None
        want = Expected.of(self.folder)
        files = {path.name: path.stat().st_size for path in self.folder.glob("*.txt")}

        def done() -> bool:
            marks = self.probe.done_sizes()
            return all(marks.get(name) == size for name, size in files.items())

        self.wait_for(f"{want.files} files done as they are now", done, timeout)
        self.fleet.stop("extract")
        last: list[Any] = [None, 0.0]

        def quiet() -> bool:
            rejects = self.probe.count("reject")
            assert rejects <= want.rejects.height, (
                f"{rejects} rejects, the files have {want.rejects.height}\n{self.describe()}"
            )
            depths = self.probe.depths()
            now = (depths["points"], depths["addresses"], self.rows(), rejects, self.api.calls)
            if now != last[0]:
                last[:] = [now, time.monotonic()]
            finished = now[:2] == (0, 0) and now[2] >= want.coordinates.height
            return finished and time.monotonic() - last[1] >= QUIET

        self.wait_for("the queues to drain and every row to load", quiet, timeout)
        self.fleet.stop("transform")
        self.wait_for(
            "the address queue to drain", lambda: self.probe.depths()["addresses"] == 0, timeout
        )
        self.fleet.stop()

    def describe(self) -> str:
        """Where the pipeline is: counts, depths, calls and the workers' logs."""
        want = Expected.of(self.folder)
        text = (
            f"rows={self.rows()}/{want.coordinates.height} rejects={self.probe.count('reject')}/"
            f"{want.rejects.height} done={self.probe.done()}/{want.files} "
            f"claims={len(self.probe.claims())} depths={self.probe.depths()} "
            f"calls={self.api.calls} answers={dict(self.api.answers())}"
        )
        if self.fleet is not None:
            exits = {w.name: w.exits for w in self.fleet.workers if w.exits}
            text += f" kills={self.fleet.kills} exits={exits}\n{self.fleet.logs_tail()}"
        return text

    # -- checks ------------------------------------------------------------------------------

    def verify(self, *, calls_per_key: float = 1.05, answered: bool = False) -> str:
        """The checks every scenario ends with (after :meth:`drain`); the figures.

        Args:
            calls_per_key: API calls allowed per distinct key (at the geocode precision); the
                workers' start-up checks are counted apart (``checks=``).
            answered: count only the calls that got a final answer (OK, ZERO_RESULTS,
                INVALID_REQUEST) against the bound, for scenarios that inject errors.

        Returns:
            ``rows=… dup=… rejects=… dead=… calls=… keys=…``, thousands separated.
        """
        want = Expected.of(self.folder)
        table = read_warehouse(self.urls["warehouse"])
        got = table.select(pl.col("latitude", "longitude").round(8))
        duplicates = got.height - got.unique().height
        missing = want.coordinates.join(got, on=["latitude", "longitude"], how="anti")
        extra = got.join(want.coordinates, on=["latitude", "longitude"], how="anti")
        depths = self.probe.depths()
        calls, checks = self.calls()
        counted = self.calls(answered=True)[0] if answered else calls
        figures = (
            f"rows={figure(table.height)}/{figure(want.coordinates.height)} "
            f"dup={duplicates} rejects={figure(self.probe.count('reject'))}/"
            f"{figure(want.rejects.height)} dead={depths['dead']} calls={figure(calls)}"
            + (f" answered={figure(counted)}" if answered else "")
            + f" keys={figure(want.keys)} ({counted / max(want.keys, 1):.3f}×) checks={checks}"
        )
        assert duplicates == 0, figures
        assert missing.is_empty() and extra.is_empty(), (
            f"{figures}; missing {missing.head(5).rows()}, not in any file {extra.head(5).rows()}"
        )
        wrong = wrong_addresses(table)
        assert wrong.is_empty(), f"{figures}; addresses not as the API answered:\n{wrong.head(5)}"
        rejects = self.probe.rejects()
        assert rejects.sort(rejects.columns).equals(want.rejects.sort(want.rejects.columns)), (
            f"{figures}; rejects differ from the files' parse rejects"
        )
        assert depths == {"points": 0, "addresses": 0, "dead": self.expected_dead}, (
            f"{figures}; queues not as expected: {depths} {self.probe.dead_letters()}"
        )
        assert counted <= calls_per_key * want.keys, (
            f"{figures}: more than {calls_per_key} calls per key; most asked: "
            f"{self.api.calls_by_coord().most_common(3)}"
        )
        return figures

    def calls(self, *, answered: bool = False) -> tuple[int, int]:
        """API calls (all, or those that got a final answer) for the data, and for the
        workers' start-up checks (they geocode :data:`~etl4all.operations.check.CHECK_POINT`)."""
        check = coord(*CHECK_POINT)
        data = checks = 0
        for request in list(self.api.requests):
            if answered and request.answer not in FINAL_ANSWERS:
                continue
            if coord(*request.params.get("latlng", "nan,nan").split(",")) == check:
                checks += 1
            else:
                data += 1
        return data, checks

    def report(self, figures: str) -> None:
        """Print the scenario's figures line (with its wall time) and record it for the
        terminal summary and the junit report."""
        line = f"{figures} wall={time.monotonic() - self.started:.0f}s"
        print(line)
        self.record(line)


def wrong_addresses(table: pl.DataFrame) -> pl.DataFrame:
    """Rows of the warehouse whose address columns differ from the fake API's answer for
    their coordinate (rounded to the geocode precision, as the transformer asks it)."""
    keyed = table.with_columns(
        lat_key=frames.scaled_key(pl.col("latitude"), PRECISION),
        lon_key=frames.scaled_key(pl.col("longitude"), PRECISION),
    )
    keys = keyed.select("lat_key", "lon_key").unique()
    scale = 10**PRECISION
    answers = pl.DataFrame(
        [
            {"lat_key": a, "lon_key": b, **expected_row(a / scale, b / scale)}
            for a, b in keys.iter_rows()
        ],
        schema_overrides={c: pl.String for c in ADDRESS_COLUMNS},
    ).select("lat_key", "lon_key", *ADDRESS_COLUMNS)
    joined = keyed.join(answers, on=["lat_key", "lon_key"], how="left", suffix="_api")
    differs = pl.any_horizontal(
        pl.col(c).ne_missing(pl.col(f"{c}_api")) for c in ADDRESS_COLUMNS
    ) | pl.col("geocoder").ne_missing(pl.lit("google"))
    return joined.filter(differs).select(
        "latitude", "longitude", *(c for col in ADDRESS_COLUMNS for c in (col, f"{col}_api"))
    )
