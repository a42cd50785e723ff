"""Pure mapping tests: provider responses → address rows, failed keys or errors.

The Google bodies are paraphrased from real Brazilian answers (São Paulo and Manaus have no
``locality``, Colatina has both ``locality`` and ``administrative_area_level_2``), plus the
postal-code-only and plus-code-only shapes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from etl4all.errors import (
    GeocodeAuthError,
    GeocodeError,
    GeocodeQuotaError,
    GeocodeTimeoutError,
    GeocodeUnavailableError,
    RateLimitedError,
)
from etl4all.geocoders import google, nominatim
from etl4all.geocoders.api import retry_after_seconds
from etl4all.geocoders.outcomes import Failed
from etl4all.geocoders.runner import degrees


def comp(long_name: str, *types: str, short: str | None = None) -> dict[str, Any]:
    """One Google address component."""
    return {"long_name": long_name, "short_name": short or long_name, "types": list(types)}


SP_AREA = [
    comp("São Paulo", "administrative_area_level_2", "political"),
    comp("São Paulo", "administrative_area_level_1", "political", short="SP"),
    comp("Brasil", "country", "political", short="BR"),
]

SAO_PAULO: dict[str, Any] = {
    "plus_code": {"compound_code": "CFHR+2X São Paulo, SP, Brasil", "global_code": "588MCFHR+2X"},
    "results": [
        {
            "address_components": [
                comp("1000", "street_number"),
                comp("Rua Vergueiro", "route", short="R. Vergueiro"),
                comp("Paraíso", "political", "sublocality", "sublocality_level_1"),
                *SP_AREA,
                comp("04101-000", "postal_code"),
            ],
            "formatted_address": "R. Vergueiro, 1000 - Paraíso, São Paulo - SP, 04101-000, Brasil",
            "geometry": {
                "location": {"lat": -23.5707, "lng": -46.6400},
                "location_type": "ROOFTOP",
                "viewport": {},
            },
            "place_id": "ChIJsp1000",
            "plus_code": {"global_code": "588MCFHR+2X"},
            "types": ["street_address"],
        },
        {
            "address_components": [comp("Paraíso", "political", "sublocality"), *SP_AREA],
            "formatted_address": "Paraíso, São Paulo - SP, Brasil",
            "geometry": {"location_type": "APPROXIMATE"},
            "place_id": "ChIJparaiso",
            "types": ["political", "sublocality", "sublocality_level_1"],
        },
    ],
    "status": "OK",
}

COLATINA: dict[str, Any] = {
    "results": [
        {
            "address_components": [
                comp("Avenida Getúlio Vargas", "route", short="Av. Getúlio Vargas"),
                comp("Centro", "political", "sublocality", "sublocality_level_1"),
                comp("Colatina", "locality", "political"),
                comp("Colatina", "administrative_area_level_2", "political"),
                comp("Espírito Santo", "administrative_area_level_1", "political", short="ES"),
                comp("Brasil", "country", "political", short="BR"),
                comp("29700-010", "postal_code"),
            ],
            "formatted_address": "Av. Getúlio Vargas - Centro, Colatina - ES, 29700-010, Brasil",
            "geometry": {"location_type": "GEOMETRIC_CENTER"},
            "place_id": "ChIJcolatina",
            "types": ["route"],
        }
    ],
    "status": "OK",
}

MANAUS_NO_CEP: dict[str, Any] = {
    "results": [
        {
            "address_components": [
                comp("Avenida Djalma Batista", "route"),
                comp("Chapada", "political", "sublocality", "sublocality_level_1"),
                comp("Manaus", "administrative_area_level_2", "political"),
                comp("Amazonas", "administrative_area_level_1", "political", short="AM"),
                comp("Brasil", "country", "political", short="BR"),
            ],
            "formatted_address": "Av. Djalma Batista - Chapada, Manaus - AM, Brasil",
            "geometry": {"location_type": "GEOMETRIC_CENTER"},
            "place_id": "ChIJmanaus",
            "types": ["route"],
        }
    ],
    "status": "OK",
}

POSTAL_CODE_ONLY: dict[str, Any] = {
    "results": [
        {
            "address_components": [
                comp("04006-052", "postal_code"),
                comp("Vila Mariana", "political", "sublocality", "sublocality_level_1"),
                *SP_AREA,
            ],
            "formatted_address": "Vila Mariana, São Paulo - SP, 04006-052, Brasil",
            "geometry": {"location_type": "APPROXIMATE"},
            "place_id": "ChIJcep",
            "types": ["postal_code"],
        }
    ],
    "status": "OK",
}

PLUS_CODE_ONLY: dict[str, Any] = {
    "plus_code": {"global_code": "67RM8JQW+2X"},
    "results": [
        {
            "address_components": [
                comp("8JQW+2X", "plus_code"),
                comp("Altamira", "administrative_area_level_2", "political"),
                comp("Pará", "administrative_area_level_1", "political", short="PA"),
                comp("Brasil", "country", "political", short="BR"),
            ],
            "formatted_address": "8JQW+2X Altamira - PA, Brasil",
            "geometry": {"location_type": "GEOMETRIC_CENTER"},
            "place_id": "GhIJplus",
            "types": ["plus_code"],
        }
    ],
    "status": "OK",
}


def body(data: dict[str, Any]) -> bytes:
    """JSON bytes as the server sends them."""
    return json.dumps(data, ensure_ascii=False).encode()


# -- Google: address_components → columns ---------------------------------------------


def test_sao_paulo_has_no_locality_so_the_city_is_admin_area_level_2() -> None:
    row = google.google_row(SAO_PAULO)
    assert row == {
        "street": "Rua Vergueiro",
        "number": "1000",
        "neighborhood": "Paraíso",
        "city": "São Paulo",
        "postal_code": "04101-000",
        "state": "São Paulo",
        "country": "Brasil",
        "formatted_address": "R. Vergueiro, 1000 - Paraíso, São Paulo - SP, 04101-000, Brasil",
        "place_id": "ChIJsp1000",
        "location_type": "ROOFTOP",
        "geocode_status": "OK",
    }


def test_colatina_uses_locality_and_route_result() -> None:
    row = google.google_row(COLATINA)
    assert row["city"] == "Colatina"
    assert row["street"] == "Avenida Getúlio Vargas"
    assert row["number"] is None
    assert row["neighborhood"] == "Centro"
    assert row["state"] == "Espírito Santo"
    assert row["postal_code"] == "29700-010"
    assert row["location_type"] == "GEOMETRIC_CENTER"


def test_locality_wins_over_admin_area_level_2_whatever_the_order() -> None:
    data = json.loads(json.dumps(COLATINA))
    components = data["results"][0]["address_components"]
    components[2], components[3] = components[3], components[2]
    components[3]["long_name"] = "Colatina (cidade)"
    assert google.google_row(data)["city"] == "Colatina (cidade)"


def test_manaus_without_postal_code() -> None:
    row = google.google_row(MANAUS_NO_CEP)
    assert row["postal_code"] is None
    assert row["city"] == "Manaus"
    assert row["neighborhood"] == "Chapada"
    assert row["state"] == "Amazonas"


def test_postal_code_only_result() -> None:
    row = google.google_row(POSTAL_CODE_ONLY)
    assert row["street"] is None
    assert row["number"] is None
    assert row["postal_code"] == "04006-052"
    assert row["neighborhood"] == "Vila Mariana"
    assert row["city"] == "São Paulo"
    assert row["location_type"] == "APPROXIMATE"


def test_plus_code_only_result() -> None:
    row = google.google_row(PLUS_CODE_ONLY)
    assert row["street"] is None
    assert row["neighborhood"] is None
    assert row["postal_code"] is None
    assert row["city"] == "Altamira"
    assert row["state"] == "Pará"
    assert row["formatted_address"] == "8JQW+2X Altamira - PA, Brasil"
    assert row["place_id"] == "GhIJplus"


def test_street_address_is_chosen_over_an_earlier_route_result() -> None:
    data = {"status": "OK", "results": [COLATINA["results"][0], SAO_PAULO["results"][0]]}
    assert google.google_row(data)["place_id"] == "ChIJsp1000"


def test_route_is_chosen_over_earlier_political_results() -> None:
    data = {"status": "OK", "results": [SAO_PAULO["results"][1], COLATINA["results"][0]]}
    assert google.google_row(data)["place_id"] == "ChIJcolatina"


def test_first_result_when_nothing_is_precise() -> None:
    data = {"status": "OK", "results": [POSTAL_CODE_ONLY["results"][0], SAO_PAULO["results"][1]]}
    assert google.google_row(data)["place_id"] == "ChIJcep"


def test_us_postal_suffix_and_plain_neighborhood() -> None:
    data = {
        "status": "OK",
        "results": [
            {
                "address_components": [
                    comp("277", "street_number"),
                    comp("Bedford Avenue", "route"),
                    comp("Williamsburg", "neighborhood", "political"),
                    comp("Brooklyn", "political", "sublocality", "sublocality_level_1"),
                    comp("New York", "locality", "political"),
                    comp("New York", "administrative_area_level_1", "political", short="NY"),
                    comp("United States", "country", "political", short="US"),
                    comp("11211", "postal_code"),
                    comp("4603", "postal_code_suffix"),
                ],
                "types": ["street_address"],
            }
        ],
    }
    row = google.google_row(data)
    assert row["postal_code"] == "11211-4603"
    assert row["neighborhood"] == "Brooklyn"  # sublocality_level_1 first (Brazil's bairro)
    assert row["formatted_address"] is None
    assert row["location_type"] is None


def test_every_field_may_be_missing() -> None:
    row = google.google_row({"status": "OK", "results": [{}]})
    assert row["geocode_status"] == "OK"
    assert all(row[k] is None for k in row if k != "geocode_status")
    components = [{"types": ["route"]}, {"short_name": "SP", "types": ["locality"]}]
    row = google.google_row({"status": "OK", "results": [{"address_components": components}]})
    assert row["street"] is None
    assert row["city"] == "SP"


def test_ok_without_results_is_zero_results() -> None:
    assert google.google_row({"status": "OK", "results": []})["geocode_status"] == "ZERO_RESULTS"


# -- Google: one function maps every status -------------------------------------------


def test_interpret_ok_and_zero_results() -> None:
    assert google.interpret(200, body(SAO_PAULO))["city"] == "São Paulo"  # type: ignore[index]
    zero = google.interpret(200, body({"results": [], "status": "ZERO_RESULTS"}))
    assert isinstance(zero, dict)
    assert zero["geocode_status"] == "ZERO_RESULTS"
    assert all(zero[k] is None for k in zero if k != "geocode_status")


def test_interpret_invalid_request_is_a_failed_key() -> None:
    data = {"status": "INVALID_REQUEST", "error_message": "Invalid request. Missing 'latlng'."}
    outcome = google.interpret(200, body(data))
    assert outcome == Failed("invalid_request", "Invalid request. Missing 'latlng'.")


@pytest.mark.parametrize(
    ("status", "message", "error", "retryable"),
    [
        ("OVER_QUERY_LIMIT", "You have exceeded your rate-limit for this API.",
         RateLimitedError, True),
        ("OVER_QUERY_LIMIT", "You have exceeded your daily request quota for this API.",
         GeocodeQuotaError, False),
        ("OVER_DAILY_LIMIT", "Billing is not enabled.", GeocodeQuotaError, False),
        ("REQUEST_DENIED", "The provided API key is invalid.", GeocodeAuthError, False),
        ("UNKNOWN_ERROR", "", GeocodeUnavailableError, True),
    ],
)  # fmt: skip
def test_interpret_error_statuses(
    status: str, message: str, error: type[Exception], retryable: bool
) -> None:
    data = {"results": [], "status": status, "error_message": message}
    with pytest.raises(error) as info:
        google.interpret(200, body(data), where="http://x/json?latlng=1,2&key=***")
    assert info.value.retryable is retryable  # type: ignore[attr-defined]
    assert status in str(info.value)
    assert message in str(info.value)


def test_interpret_fatal_messages_say_what_to_do() -> None:
    denied = {"status": "REQUEST_DENIED", "error_message": "The provided API key is invalid."}
    with pytest.raises(GeocodeAuthError, match="GOOGLE_MAPS_API_KEY"):
        google.interpret(200, body(denied))
    with pytest.raises(GeocodeQuotaError, match="midnight Pacific"):
        google.interpret(200, body({"status": "OVER_DAILY_LIMIT"}))


def test_interpret_http_errors() -> None:
    with pytest.raises(RateLimitedError) as info:
        google.interpret(429, b"Too Many Requests", retry_after="7")
    assert info.value.retry_after == 7.0
    for code in (500, 502, 503, 504):
        with pytest.raises(GeocodeUnavailableError):
            google.interpret(code, b"<html>oops</html>")
    with pytest.raises(GeocodeAuthError):
        google.interpret(403, b"<html>Forbidden</html>")
    with pytest.raises(GeocodeError, match="google_url") as fatal:
        google.interpret(404, b"<html>Not Found</html>")
    assert not fatal.value.retryable


def test_interpret_a_body_that_is_not_google_json_is_retryable() -> None:
    for raw in (b"<html>proxy error</html>", b"[1, 2]", b"\xff\xfe", b'{"results": []}'):
        with pytest.raises(GeocodeUnavailableError) as info:
            google.interpret(200, raw)
        assert not isinstance(info.value, GeocodeTimeoutError)


def test_interpret_an_unknown_status_fails_the_key_only() -> None:
    outcome = google.interpret(200, body({"status": "NEW_STATUS", "error_message": "what"}))
    assert outcome == Failed("unexpected_status", "NEW_STATUS: what")


# -- Nominatim ------------------------------------------------------------------------

CASTILHO: dict[str, Any] = {
    "place_id": 9001,
    "licence": "Data © OpenStreetMap contributors, ODbL 1.0. http://osm.org/copyright",
    "osm_type": "way",
    "osm_id": 123456789,
    "lat": "-20.8721",
    "lon": "-51.4875",
    "category": "highway",
    "type": "residential",
    "display_name": "Rua Amazonas, Centro, Castilho, Região Imediata de Andradina, São Paulo",
    "address": {
        "road": "Rua Amazonas",
        "suburb": "Centro",
        "town": "Castilho",
        "municipality": "Região Imediata de Andradina",
        "state_district": "Região Geográfica Intermediária de Araçatuba",
        "state": "São Paulo",
        "ISO3166-2-lvl4": "BR-SP",
        "region": "Região Sudeste",
        "postcode": "16920-000",
        "country": "Brasil",
        "country_code": "br",
    },
}


def test_nominatim_town_wins_over_municipality() -> None:
    row = nominatim.nominatim_row(CASTILHO)
    assert row == {
        "street": "Rua Amazonas",
        "number": None,
        "neighborhood": "Centro",
        "city": "Castilho",
        "postal_code": "16920-000",
        "state": "São Paulo",
        "country": "Brasil",
        "formatted_address": CASTILHO["display_name"],
        "place_id": "way/123456789",
        "location_type": None,
        "geocode_status": "OK",
    }


@pytest.mark.parametrize(
    ("address", "column", "expected"),
    [
        ({"city": "Porto Alegre", "town": "X", "municipality": "Y"}, "city", "Porto Alegre"),
        ({"village": "Vila Nova", "municipality": "Região"}, "city", "Vila Nova"),
        ({"municipality": "Região Imediata"}, "city", "Região Imediata"),
        ({"pedestrian": "Calçadão"}, "street", "Calçadão"),
        ({"road": "Rua A", "footway": "Passeio"}, "street", "Rua A"),
        ({"neighbourhood": "Vila X", "quarter": "Q"}, "neighborhood", "Vila X"),
        ({"quarter": "Quarteirão"}, "neighborhood", "Quarteirão"),
        ({"house_number": "275-291"}, "number", "275-291"),
    ],
)
def test_nominatim_address_keys(address: dict[str, str], column: str, expected: str) -> None:
    assert nominatim.nominatim_row({"address": address})[column] == expected


def test_nominatim_missing_everything() -> None:
    row = nominatim.nominatim_row({})
    assert row["geocode_status"] == "OK"
    assert all(row[k] is None for k in row if k != "geocode_status")


def test_nominatim_interpret() -> None:
    assert nominatim.interpret(200, body(CASTILHO))["city"] == "Castilho"  # type: ignore[index]
    zero = nominatim.interpret(200, body({"error": "Unable to geocode"}))
    assert isinstance(zero, dict)
    assert zero["geocode_status"] == "ZERO_RESULTS"
    bad = {"error": {"code": 400, "message": "Parameter 'lat' must be a number."}}
    assert nominatim.interpret(400, body(bad)) == Failed(
        "invalid_request", "Parameter 'lat' must be a number."
    )
    with pytest.raises(GeocodeAuthError, match="User-Agent"):
        nominatim.interpret(403, b"<html>Access blocked</html>")
    with pytest.raises(RateLimitedError) as info:
        nominatim.interpret(429, b"", retry_after="2")
    assert info.value.retry_after == 2.0
    with pytest.raises(GeocodeUnavailableError):
        nominatim.interpret(503, b"")
    with pytest.raises(GeocodeUnavailableError):
        nominatim.interpret(200, b"<html>maintenance</html>")
    with pytest.raises(GeocodeError, match="nominatim_url"):
        nominatim.interpret(404, b"Not Found")


# -- shared helpers --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [(-30.04982864, "-30.04982864"), (0.00001, "0.00001"), (-51.2, "-51.2"), (0.0, "0"),
     (-0.0, "0"), (10.0, "10")],
)  # fmt: skip
def test_degrees_never_uses_exponent_notation(value: float, text: str) -> None:
    assert degrees(value) == text


@pytest.mark.parametrize(
    ("value", "seconds"), [(None, None), ("", None), ("7", 7.0), ("-3", 0.0), ("soon", None)]
)
def test_retry_after_is_delta_seconds_only(value: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(value) == seconds
