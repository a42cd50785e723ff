"""A loopback HTTP server that speaks Google's Geocoding JSON and Nominatim's jsonv2, for tests.

Usage::

    with FakeApi(latency=0.01, qps_cap=50) as api:
        settings = Settings(geocoder="google", google_key=api.key, google_url=api.google_url)
        ...
        api.calls, api.requests[0].params, api.max_in_window()

- Google: ``GET /maps/api/geocode/json?latlng=LAT,LNG&key=K&language=..`` answers the legacy
  API's JSON (``status``, ``results[].address_components/formatted_address/geometry/place_id/
  types``, ``error_message``). Nominatim: ``GET /nominatim/reverse?format=jsonv2&lat=..&lon=..``.
- Addresses are deterministic functions of the coordinate (:func:`fake_address`), Brazilian-
  shaped: big cities without ``locality`` (only ``administrative_area_level_2``), some results
  without postal code, number or bairro, sometimes a ``route`` result before the street address.
- Faults, all off by default and changeable while the server runs: ``latency``; ``qps_cap``
  (requests over it in a sliding 1-s window get OVER_QUERY_LIMIT / HTTP 429); ``key`` (wrong
  key → REQUEST_DENIED "The provided API key is invalid."); ``deny_from_call`` (REQUEST_DENIED
  from the N-th call on); ``daily_quota`` (after N accepted calls: OVER_QUERY_LIMIT with the
  daily-quota message, or ``OVER_DAILY_LIMIT`` when ``over_daily_limit``); ``zero_results``
  and ``invalid`` (sets of coordinates, see :func:`coord`); ``script`` (per coordinate, the
  answers of its first calls, e.g. ``["UNKNOWN_ERROR", 503]``); ``error_rate`` with
  ``error_kinds`` (seeded random transient faults, e.g. ``error_rate=0.4`` with
  ``error_kinds=(500, 500, 500, "OVER_QUERY_LIMIT")``: 30 % HTTP 500 and 10 % OVER_QUERY_LIMIT);
  :meth:`FakeApi.go_down` / :meth:`FakeApi.come_back` (connections refused, open ones
  dropped, then the same port serves again).
- Answers understood in ``script``/``error_kinds``: "OK", "ZERO_RESULTS", "INVALID_REQUEST",
  "UNKNOWN_ERROR", "OVER_QUERY_LIMIT", "DAILY_QUOTA", "OVER_DAILY_LIMIT", "REQUEST_DENIED",
  an HTTP status (429, 500, 503, ...), "NOT_JSON" (200 with an HTML body), "DROP" (connection
  closed without an answer), "STALL" (answers after ``stall_seconds``).
- Every request is recorded (:class:`Recorded`: monotonic time, API, params, headers, answer);
  :meth:`FakeApi.calls_by_coord` counts them per coordinate and :attr:`FakeApi.answered` counts
  the calls that got a final answer (OK, ZERO_RESULTS, INVALID_REQUEST).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import hashlib
import json
import multiprocessing
import random
import threading
import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any

from aiohttp import web

GOOGLE_PATH = "/maps/api/geocode/json"
NOMINATIM_PATH = "/nominatim"
STATS_PATH = "/_fake/stats"
DEFAULT_KEY = "fake-key-Zq8wX3vY"
INVALID_KEY_MESSAGE = "The provided API key is invalid."
DAILY_QUOTA_MESSAGE = "You have exceeded your daily request quota for this API."
RATE_MESSAGE = "You have exceeded your rate-limit for this API."
FINAL_ANSWERS = frozenset({"OK", "ZERO_RESULTS", "INVALID_REQUEST"})
"""Answers that settle a coordinate (a client has no reason to ask again)."""
LICENCE = "Data © OpenStreetMap contributors, ODbL 1.0. http://osm.org/copyright"

# (municipality, state, UF, has a locality component, CEP prefix, bairros)
CITIES = (
    ("São Paulo", "São Paulo", "SP", False, "01", ("Paraíso", "Vila Buarque", "Alto da Mooca")),
    ("Rio de Janeiro", "Rio de Janeiro", "RJ", False, "22", ("Cosme Velho", "Botafogo")),
    ("Manaus", "Amazonas", "AM", False, "69", ("Adrianópolis", "Centro")),
    ("Colatina", "Espírito Santo", "ES", True, "29", ("Esplanada", "Centro")),
    ("Porto Alegre", "Rio Grande do Sul", "RS", True, "90", ("Moinhos de Vento", "Bom Fim")),
    ("Curitiba", "Paraná", "PR", True, "80", ("Batel", "Água Verde")),
)
STREETS = (
    "Rua Augusta",
    "Avenida Paulista",
    "Rua das Flores",
    "Travessa São José",
    "Avenida Ipiranga",
    "Rua Padre Chagas",
    "Rua Dr. Timóteo",
)


def coord(lat: float | str, lon: float | str) -> str:
    """The key the fake uses for a coordinate: both values at 6 decimals."""
    return f"{float(lat):.6f},{float(lon):.6f}"


@dataclasses.dataclass(frozen=True)
class FakeAddress:
    """The address the fake server knows for a coordinate."""

    street: str
    number: str | None
    neighborhood: str | None
    city: str
    has_locality: bool
    postal_code: str | None
    state: str
    state_code: str
    country: str
    place_id: str
    osm_id: int
    route_first: bool

    @property
    def location_type(self) -> str:
        """ROOFTOP with a number, else the route's GEOMETRIC_CENTER."""
        return "ROOFTOP" if self.number else "GEOMETRIC_CENTER"

    @property
    def formatted_address(self) -> str:
        """Google-style ``Rua X, 12 - Bairro, Cidade - UF, CEP, Brasil``."""
        text = self.street + (f", {self.number}" if self.number else "")
        text += f" - {self.neighborhood}" if self.neighborhood else ""
        text += f", {self.city} - {self.state_code}"
        text += f", {self.postal_code}" if self.postal_code else ""
        return text + f", {self.country}"

    @property
    def display_name(self) -> str:
        """Nominatim-style comma-separated display name."""
        parts = [self.number, self.street, self.neighborhood, self.city, self.state]
        parts += [self.postal_code, self.country]
        return ", ".join(p for p in parts if p)


def fake_address(lat: float | str, lon: float | str) -> FakeAddress:
    """The deterministic fake address of a coordinate."""
    digest = hashlib.sha256(coord(lat, lon).encode()).digest()
    h = int.from_bytes(digest[:8], "big")
    city, state, uf, has_locality, cep, bairros = CITIES[h % len(CITIES)]
    return FakeAddress(
        street=STREETS[(h >> 8) % len(STREETS)],
        number=str(1 + (h >> 16) % 2000) if (h >> 28) % 5 else None,
        neighborhood=bairros[(h >> 32) % len(bairros)] if (h >> 36) % 7 else None,
        city=city,
        has_locality=has_locality,
        postal_code=f"{cep}{(h >> 40) % 1000:03d}-{(h >> 24) % 1000:03d}"
        if (h >> 44) % 4
        else None,
        state=state,
        state_code=uf,
        country="Brasil",
        place_id="ChIJ" + digest[8:20].hex(),
        osm_id=100_000 + (h >> 20) % 900_000_000,
        route_first=(h >> 52) % 3 == 0,
    )


def expected_row(lat: float | str, lon: float | str, geocoder: str = "google") -> dict[str, Any]:
    """The address columns a correct geocoder maps from the fake's answer for a coordinate."""
    a = fake_address(lat, lon)
    return {
        "street": a.street,
        "number": a.number,
        "neighborhood": a.neighborhood,
        "city": a.city,
        "postal_code": a.postal_code,
        "state": a.state,
        "country": a.country,
        "formatted_address": a.formatted_address if geocoder == "google" else a.display_name,
        "place_id": a.place_id if geocoder == "google" else f"way/{a.osm_id}",
        "location_type": a.location_type if geocoder == "google" else None,
        "geocode_status": "OK",
    }


def _component(long_name: str, short_name: str | None, *types: str) -> dict[str, Any]:
    return {"long_name": long_name, "short_name": short_name or long_name, "types": list(types)}


def google_ok_body(lat: float, lon: float) -> dict[str, Any]:
    """Google's reverse-geocoding JSON for a coordinate (several results, most precise first)."""
    a = fake_address(lat, lon)
    area = [
        _component(a.city, None, "administrative_area_level_2", "political"),
        _component(a.state, a.state_code, "administrative_area_level_1", "political"),
        _component(a.country, "BR", "country", "political"),
    ]
    if a.has_locality:
        area.insert(0, _component(a.city, None, "locality", "political"))
    bairro = (
        [_component(a.neighborhood, None, "political", "sublocality", "sublocality_level_1")]
        if a.neighborhood
        else []
    )
    cep = [_component(a.postal_code, None, "postal_code")] if a.postal_code else []
    route = [_component(a.street, a.street.replace("Rua ", "R. "), "route")]
    location = {"lat": float(lat), "lng": float(lon)}

    def result(types: list[str], components: list[dict[str, Any]], text: str, loc: str, pid: str):
        return {
            "address_components": components,
            "formatted_address": text,
            "geometry": {"location": location, "location_type": loc},
            "place_id": pid,
            "types": types,
        }

    results = []
    if a.number:
        number = [_component(a.number, None, "street_number")]
        results.append(
            result(
                ["street_address"],
                number + route + bairro + area + cep,
                a.formatted_address,
                "ROOFTOP",
                a.place_id,
            )
        )
        route_text = a.formatted_address.replace(f", {a.number}", "")
        routed = result(
            ["route"], route + bairro + area + cep, route_text, "GEOMETRIC_CENTER", a.place_id + "r"
        )
        results.insert(0 if a.route_first else 1, routed)
    else:
        results.append(
            result(
                ["route"],
                route + bairro + area + cep,
                a.formatted_address,
                "GEOMETRIC_CENTER",
                a.place_id,
            )
        )
    if a.postal_code:
        text = f"{a.postal_code}, {a.city} - {a.state_code}, {a.country}"
        results.append(result(["postal_code"], cep + area, text, "APPROXIMATE", a.place_id + "p"))
    results.append(
        result(
            ["administrative_area_level_2", "political"],
            area[-3:],
            f"{a.city} - {a.state_code}, {a.country}",
            "APPROXIMATE",
            a.place_id + "c",
        )
    )
    return {"plus_code": {"global_code": "588MC9X8+XX"}, "results": results, "status": "OK"}


def nominatim_ok_body(lat: float, lon: float) -> dict[str, Any]:
    """Nominatim's jsonv2 reverse JSON for a coordinate."""
    a = fake_address(lat, lon)
    address: dict[str, str] = {}
    if a.number:
        address["house_number"] = a.number
    address["road"] = a.street
    if a.neighborhood:
        address["suburb"] = a.neighborhood
    address["city" if not a.has_locality else "town"] = a.city
    address["municipality"] = f"Região Imediata de {a.city}"
    address["state"] = a.state
    address["ISO3166-2-lvl4"] = f"BR-{a.state_code}"
    if a.postal_code:
        address["postcode"] = a.postal_code
    address["country"] = a.country
    address["country_code"] = "br"
    return {
        "place_id": a.osm_id % 1_000_000,
        "licence": LICENCE,
        "osm_type": "way",
        "osm_id": a.osm_id,
        "lat": f"{float(lat):.7f}",
        "lon": f"{float(lon):.7f}",
        "category": "building" if a.number else "highway",
        "type": "yes" if a.number else "residential",
        "place_rank": 30 if a.number else 26,
        "importance": 0.0001,
        "addresstype": "building" if a.number else "road",
        "name": "",
        "display_name": a.display_name,
        "address": address,
        "boundingbox": [str(lat), str(lat), str(lon), str(lon)],
    }


@dataclasses.dataclass(frozen=True)
class Recorded:
    """One request as the server saw it."""

    t: float
    """``time.monotonic()`` at arrival."""
    api: str
    """``google`` or ``nominatim``."""
    params: dict[str, str]
    headers: dict[str, str]
    answer: str
    """What the server answered: a status name or ``HTTP 503``."""


class FakeApi:
    """The fake Google + Nominatim server on 127.0.0.1 (port 0) in a background thread."""

    def __init__(
        self,
        *,
        key: str | None = DEFAULT_KEY,
        latency: float = 0.0,
        qps_cap: float | None = None,
        seed: int = 1234,
    ) -> None:
        self.key = key
        self.latency = latency
        self.qps_cap = qps_cap
        self.error_rate = 0.0
        self.error_kinds: tuple[str | int, ...] = (500, 503, "OVER_QUERY_LIMIT")
        self.zero_results: set[str] = set()
        self.invalid: set[str] = set()
        self.script: dict[str, list[str | int]] = {}
        self.daily_quota: int | None = None
        self.over_daily_limit = False
        self.deny_from_call: int | None = None
        self.stall_seconds = 5.0
        self.requests: list[Recorded] = []
        self._per_coord: collections.Counter[str] = collections.Counter()
        self._answered = 0
        self._down = False
        self._random = random.Random(seed)
        self._accepted = 0
        self._window: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> FakeApi:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start serving on a free port; returns when the server listens."""
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def serve() -> None:
            app = web.Application()
            app.router.add_get(GOOGLE_PATH, self._google)
            app.router.add_get(NOMINATIM_PATH + "/reverse", self._nominatim)
            app.router.add_get(STATS_PATH, self._stats)
            self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
            await self._runner.setup()
            self._site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await self._site.start()
            self.port = self._runner.addresses[0][1]
            ready.set()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(serve())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="fake-geocoding-api", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake geocoding API did not start")

    def stop(self) -> None:
        """Stop the server and its thread."""
        if self._loop is None or self._runner is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
        future.result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop.close()
        self._loop = None

    def go_down(self) -> None:
        """Stop listening (new connections are refused) and drop every open connection:
        requests in flight and kept-alive connections see the connection closed."""
        assert self._loop is not None and self._runner is not None
        self._down = True

        async def down() -> None:
            if self._site is not None:
                await self._site.stop()
                self._site = None
            server = self._runner.server if self._runner is not None else None
            for handler in list(server.connections if server is not None else []):
                if handler.transport is not None:
                    handler.transport.abort()

        asyncio.run_coroutine_threadsafe(down(), self._loop).result(10)

    def come_back(self) -> None:
        """Listen again on the same port after :meth:`go_down`."""
        assert self._loop is not None and self._runner is not None

        async def up() -> None:
            assert self._runner is not None
            self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
            await self._site.start()

        asyncio.run_coroutine_threadsafe(up(), self._loop).result(10)
        self._down = False

    # -- what tests read -----------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def google_url(self) -> str:
        """The value for ``Settings.google_url`` / ``--google-url``."""
        return self.base_url + GOOGLE_PATH

    @property
    def nominatim_url(self) -> str:
        """The value for ``Settings.nominatim_url``."""
        return self.base_url + NOMINATIM_PATH

    @property
    def calls(self) -> int:
        """Requests received so far (every answer counts)."""
        return len(self.requests)

    @property
    def answered(self) -> int:
        """Requests that got a final answer (:data:`FINAL_ANSWERS`)."""
        return self._answered

    def calls_for(self, lat: float, lon: float) -> int:
        """Requests received for one coordinate."""
        return self._per_coord[coord(lat, lon)]

    def calls_by_coord(self) -> collections.Counter[str]:
        """Requests received per coordinate (keys as :func:`coord` writes them)."""
        with self._lock:
            return collections.Counter(self._per_coord)

    def answers(self) -> collections.Counter[str]:
        """How many times each answer was given."""
        return collections.Counter(r.answer for r in self.requests)

    def times(self, api: str | None = None) -> list[float]:
        """Arrival times of the requests (of one API if given), sorted."""
        return sorted(r.t for r in self.requests if api is None or r.api == api)

    def max_in_window(self, window: float = 1.0, api: str | None = None) -> int:
        """The most requests that arrived within any ``window`` seconds (sliding window)."""
        return max_in_window(self.times(api), window)

    def reset(self) -> None:
        """Forget recorded requests and counters (not the configuration)."""
        with self._lock:
            self.requests.clear()
            self._per_coord.clear()
            self._answered = 0
            self._accepted = 0
            self._window.clear()

    # -- handlers -----------------------------------------------------------------------
    def _decide(self, api: str, params: dict[str, str]) -> str | int:
        """Choose the answer for one request and record it (thread-safe)."""
        now = time.monotonic()
        with self._lock:
            number = len(self.requests) + 1
            key = _request_coord(params)
            answer: str | int
            denied = self.deny_from_call is not None and number >= self.deny_from_call
            wrong_key = api == "google" and self.key is not None and params.get("key") != self.key
            if denied or wrong_key:
                answer = "REQUEST_DENIED"
            elif self.daily_quota is not None and self._accepted >= self.daily_quota:
                answer = "OVER_DAILY_LIMIT" if self.over_daily_limit else "DAILY_QUOTA"
            elif self._over_cap(now):
                answer = "OVER_QUERY_LIMIT"
            elif key is not None and self.script.get(key):
                answer = self.script[key].pop(0)
            elif self.error_rate and self._random.random() < self.error_rate:
                answer = self._random.choice(self.error_kinds)
            elif key is None or key in self.invalid:
                answer = "INVALID_REQUEST"
            elif key in self.zero_results:
                answer = "ZERO_RESULTS"
            else:
                answer = "OK"
            if answer not in ("OVER_QUERY_LIMIT", "REQUEST_DENIED", "DAILY_QUOTA"):
                self._accepted += 1
                if self.qps_cap is not None:
                    self._window.append(now)
            return answer

    def _record(self, request: web.Request, api: str, answer: str | int, t: float) -> None:
        headers = dict(request.headers)
        name = answer if isinstance(answer, str) else f"HTTP {answer}"
        key = _request_coord(dict(request.query))
        with self._lock:
            self.requests.append(Recorded(t, api, dict(request.query), headers, name))
            if key is not None:
                self._per_coord[key] += 1
            if name in FINAL_ANSWERS:
                self._answered += 1

    def _over_cap(self, now: float) -> bool:
        if self.qps_cap is None:
            return False
        while self._window and self._window[0] <= now - 1.0:
            self._window.popleft()
        return len(self._window) >= self.qps_cap

    async def _stats(self, request: web.Request) -> web.StreamResponse:
        """Counters for a client in another process (:func:`serve_in_process`)."""
        window = float(request.query.get("window", "1.0"))
        with self._lock:
            stats = {
                "calls": self.calls,
                "answers": dict(self.answers()),
                "max_in_window": self.max_in_window(window),
            }
        return _json(stats)

    async def _google(self, request: web.Request) -> web.StreamResponse:
        return await self._answer(request, "google")

    async def _nominatim(self, request: web.Request) -> web.StreamResponse:
        return await self._answer(request, "nominatim")

    async def _answer(self, request: web.Request, api: str) -> web.StreamResponse:
        t = time.monotonic()
        if self._down:  # a request on a connection opened just before go_down
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=204)
        params = dict(request.query)
        answer = self._decide(api, params)
        self._record(request, api, answer, t)
        if answer == "STALL":
            await asyncio.sleep(self.stall_seconds)
            answer = "OK"
        elif self.latency:
            await asyncio.sleep(self.latency)
        if answer == "DROP":
            assert request.transport is not None
            request.transport.abort()  # the client sees the connection close, no answer
            return web.Response(status=204)
        if isinstance(answer, int):
            return web.Response(status=answer, text=f"<html>HTTP {answer}</html>")
        if answer == "NOT_JSON":
            return web.Response(status=200, text="<html>Bad gateway page</html>")
        lat, lon = _request_latlon(params)
        if api == "google":
            return _json(self._google_body(answer, params, lat, lon))
        return self._nominatim_response(answer, lat, lon)

    def _google_body(
        self, answer: str, params: dict[str, str], lat: float, lon: float
    ) -> dict[str, Any]:
        if answer == "OK":
            return google_ok_body(lat, lon)
        body: dict[str, Any] = {"results": [], "status": answer}
        if answer == "DAILY_QUOTA":
            body.update(status="OVER_QUERY_LIMIT", error_message=DAILY_QUOTA_MESSAGE)
        elif answer == "OVER_QUERY_LIMIT":
            body["error_message"] = RATE_MESSAGE
        elif answer == "OVER_DAILY_LIMIT":
            body["error_message"] = "You have exceeded your daily request quota for this API."
        elif answer == "REQUEST_DENIED":
            body["error_message"] = (
                INVALID_KEY_MESSAGE
                if params.get("key")
                else "You must use an API key to authenticate each request to Google Maps "
                "Platform APIs."
            )
        elif answer == "INVALID_REQUEST":
            body["error_message"] = (
                f"Invalid request. Invalid 'latlng' parameter: {params.get('latlng')}"
            )
        elif answer == "UNKNOWN_ERROR":
            body["error_message"] = "An unknown error occurred."
        return body

    def _nominatim_response(self, answer: str, lat: float, lon: float) -> web.Response:
        if answer == "OK":
            return _json(nominatim_ok_body(lat, lon))
        if answer == "ZERO_RESULTS":
            return _json({"error": "Unable to geocode"})
        if answer == "INVALID_REQUEST":
            return _json(
                {"error": {"code": 400, "message": "Parameter 'lat' must be a number."}}, 400
            )
        if answer == "REQUEST_DENIED":
            return web.Response(status=403, text="<html>Access blocked</html>")
        if answer in ("OVER_QUERY_LIMIT", "DAILY_QUOTA", "OVER_DAILY_LIMIT"):
            return web.Response(status=429, text="Too Many Requests", headers={"Retry-After": "1"})
        return web.Response(status=500, text="<html>Internal Server Error</html>")


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body, ensure_ascii=False).encode(),
        content_type="application/json",
        charset="utf-8",
    )


def _request_latlon(params: dict[str, str]) -> tuple[float, float]:
    try:
        if "latlng" in params:
            lat, lon = params["latlng"].split(",")
            return float(lat), float(lon)
        return float(params["lat"]), float(params["lon"])
    except (KeyError, ValueError):
        return 0.0, 0.0


def _request_coord(params: dict[str, str]) -> str | None:
    try:
        if "latlng" in params:
            lat, lon = params["latlng"].split(",")
            return coord(lat, lon)
        return coord(params["lat"], params["lon"])
    except (KeyError, ValueError):
        return None


def _serve(options: dict[str, Any], ports: Any, stop: Any) -> None:
    with FakeApi(**options) as api:
        ports.put(api.port)
        stop.wait()


@contextlib.contextmanager
def serve_in_process(**options: Any) -> Iterator[str]:
    """Run a :class:`FakeApi` in a child process (no GIL shared with the client); yields its
    base URL. Counters: ``GET {base}/_fake/stats`` (calls, answers, max_in_window)."""
    context = multiprocessing.get_context("spawn")
    ports = context.Queue()
    stop = context.Event()
    process = context.Process(target=_serve, args=(options, ports, stop), daemon=True)
    process.start()
    try:
        yield f"http://127.0.0.1:{ports.get(timeout=30)}"
    finally:
        stop.set()
        process.join(10)


def max_in_window(times: Iterable[float], window: float = 1.0) -> int:
    """The most of ``times`` that fall in any half-open interval ``[t, t + window)``."""
    ordered = sorted(times)
    best = start = 0
    for end, t in enumerate(ordered):
        while ordered[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best
