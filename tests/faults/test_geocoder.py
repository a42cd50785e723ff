"""Fault scenarios: the geocoding API fails.

- down for 10 s (connections refused, open ones dropped), longer than a request's retries
  (``max_attempts`` 5: at most 7.5 s of backoff), then back: the batch waits and is done once
  the API answers again; nothing becomes a reject;
- 30 % HTTP 500 and 10 % OVER_QUERY_LIMIT answers: every coordinate is answered in the end;
  the bound counts the *answered* calls (OK, ZERO_RESULTS, INVALID_REQUEST: ≤ 1.05 × keys),
  and all calls against the same bound scaled by the failure rate (≤ 1.05 × keys / 0.6);
  two coordinates fail more times in a row than a key is tried within one batch, so the
  batch itself must be retried; each OVER_QUERY_LIMIT pauses a process's requests for a
  second, so this input is small (120 points, two transformers);
- a wrong key: the transformer exits (before taking any message), is restarted five times by
  the supervisor, then the key becomes valid (the fake API switches to it): nothing is
  dead-lettered and everything is loaded.
"""

from __future__ import annotations

import time

from geocoders.fake_api import coord
from harness import MARKS, Pipeline, Worker, figure

from etl4all.parsing import parse
from etl4all.settings import Settings

pytestmark = MARKS

FAILURE_RATE = 0.4
API_OUTAGE = 10
"""Seconds the API is down."""


def test_geocoder_down_for_a_while(pipeline: Pipeline) -> None:
    pipeline.put_files(files=6, points=250, seed=61)
    pipeline.start()
    quarter = pipeline.expected().keys / 4
    pipeline.wait_for("a quarter of the API calls", lambda: pipeline.api.calls >= quarter, 60)
    pipeline.api.go_down()
    calls = pipeline.api.calls
    pipeline.hold(API_OUTAGE, "the API outage to end")
    pipeline.api.come_back()
    pipeline.drain()
    figures = pipeline.verify()
    pipeline.report(f"down={API_OUTAGE}s calls_at_cut={figure(calls)} {figures}")


def test_http_500_and_over_query_limit(pipeline: Pipeline) -> None:
    pipeline.env["ETL4ALL_BATCH_ROWS"] = "30"  # four batches for two transformers
    (path,) = pipeline.put_files(files=1, points=120, seed=62)
    pipeline.api.error_rate = FAILURE_RATE
    pipeline.api.error_kinds = (500, 500, 500, "OVER_QUERY_LIMIT")  # 30 % and 10 %
    # and two coordinates that fail more often in a row than a key is tried at once
    streak = [500] * (int(Settings().max_attempts) + 1)
    points = parse.parse(path.read_bytes(), path.name).points
    for lat, lon in points.select("latitude", "longitude").head(2).iter_rows():
        pipeline.api.script[coord(round(lat, 6), round(lon, 6))] = list(streak)
    pipeline.start(transform=2)
    pipeline.drain()
    figures = pipeline.verify(answered=True)
    keys = pipeline.expected().keys
    assert pipeline.calls()[0] <= 1.05 * keys / (1 - FAILURE_RATE) + 2 * len(streak), figures
    answers = pipeline.api.answers()
    pipeline.report(
        f"http500={answers['HTTP 500']} over_query_limit={answers['OVER_QUERY_LIMIT']} {figures}"
    )


def test_wrong_key_five_restarts_then_the_right_key(pipeline: Pipeline) -> None:
    pipeline.put_files(files=4, points=300, seed=63)
    right = pipeline.api.key
    pipeline.api.key = "a-key-that-is-not-the-workers"  # their key is refused: REQUEST_DENIED
    fixed = float("inf")

    def refused(worker: Worker, code: int) -> bool:
        return worker.stage == "transform" and code != 0 and worker.started_at < fixed

    fleet = pipeline.start(allowed=refused, wait=False)
    (transform,) = fleet.of("transform")
    pipeline.wait_for("the transformer's sixth exit", lambda: len(transform.exits) >= 6, 60)
    pipeline.api.key = right
    fixed = time.monotonic()
    pipeline.wait_for("the transformer to take work", transform.ready, 60)
    pipeline.drain()
    figures = pipeline.verify()
    pipeline.report(f"restarts={fleet.restarts['transform']} exits={transform.exits} {figures}")
