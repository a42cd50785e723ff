"""Synthetic warehouse content with street-level addresses, for the report's tests and bench.

The offline geocoder gives cities only; these rows look like Google's answers in Porto
Alegre: neighborhoods of different sizes, a few streets each, some ZERO_RESULTS, some
offline rows, geocodes up to 45 days old (never within 2 hours of a whole day), 30 source
files, and rejects of every kind.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from etl4all import frames

NEIGHBORHOODS = {
    "Centro Histórico": (-30.0328, -51.2302),
    "Cidade Baixa": (-30.0405, -51.2232),
    "Bom Fim": (-30.0339, -51.2094),
    "Moinhos de Vento": (-30.0264, -51.2008),
    "Petrópolis": (-30.0420, -51.1800),
    "Menino Deus": (-30.0535, -51.2250),
    "Azenha": (-30.0500, -51.2140),
    "Santana": (-30.0470, -51.2000),
    "Floresta": (-30.0200, -51.2150),
    "São Geraldo": (-30.0110, -51.2050),
    "Partenon": (-30.0600, -51.1800),
    "Tristeza": (-30.1100, -51.2500),
    "Cristal": (-30.0800, -51.2400),
    "Higienópolis": (-30.0170, -51.1880),
    "Três Figueiras": (-30.0350, -51.1650),
    "Sarandi": (-29.9900, -51.1300),
    "Navegantes": (-30.0000, -51.2000),
    "Jardim Botânico": (-30.0520, -51.1750),
    "Cavalhada": (-30.1000, -51.2300),
    "Restinga": (-30.1500, -51.1400),
}
STREETS = [
    "Rua dos Andradas",
    "Avenida Borges de Medeiros",
    "Rua da República",
    "Avenida Ipiranga",
    "Avenida Protásio Alves",
    "Rua Padre Chagas",
    "Avenida Osvaldo Aranha",
    "Rua José do Patrocínio",
    "Avenida Getúlio Vargas",
    "Rua Ramiro Barcelos",
    "Avenida Assis Brasil",
    "Avenida Bento Gonçalves",
    "Rua Felipe Camarão",
    "Avenida Nilo Peçanha",
    "Rua Lima e Silva",
    "Avenida Cristóvão Colombo",
    "Rua Silva Só",
    "Avenida Wenceslau Escobar",
]
FILES = 30


def addresses(n: int, *, seed: int = 0, now: dt.datetime | None = None) -> pl.DataFrame:
    """``n`` address rows (``frames.ADDRESSES_SCHEMA``); neighborhood sizes follow Zipf."""
    rng = np.random.default_rng(seed)
    now = now or dt.datetime.now(dt.UTC)
    names = list(NEIGHBORHOODS)
    weights = 1 / np.arange(1, len(names) + 1)
    hood = rng.choice(len(names), size=n, p=weights / weights.sum())
    centers = np.array([NEIGHBORHOODS[name] for name in names])
    spread = rng.normal(0, 0.006, size=(n, 2))
    lat = np.round(centers[hood, 0] + spread[:, 0], 8)
    lon = np.round(centers[hood, 1] + spread[:, 1], 8)
    street = (hood * 5 + rng.geometric(0.35, size=n)) % len(STREETS)
    kind = rng.random(n)  # < 0.85 google OK, < 0.87 google ZERO_RESULTS, else offline
    # whole days plus 0.1..0.9 of a day: no row is within hours of an N-day boundary
    age_s = (rng.integers(0, 45, size=n) + rng.uniform(0.1, 0.9, size=n)) * 86400
    file = np.sort(rng.integers(0, FILES, size=n))
    ok, google = pl.col("_ok"), pl.col("_google")
    frame = (
        pl.DataFrame(
            {
                "source": pl.Series([f"data_points_{f + 1:02d}.txt" for f in range(FILES)])
                .gather(file)
                .to_list(),
                "line": np.arange(n, dtype=np.uint32) * 3 + 1,
                "latitude": lat,
                "longitude": lon,
                "distance_km": rng.uniform(0, 10, size=n),
                "bearing_deg": rng.uniform(0, 360, size=n),
                "_street": pl.Series(STREETS).gather(street),
                "_number": rng.integers(1, 3000, size=n),
                "_neighborhood": pl.Series(names).gather(hood),
                "_ok": kind < 0.85,
                "_google": kind < 0.87,
                "geocoded_at": pl.Series([now]).gather(np.zeros(n, dtype=np.int64))
                - pl.Series(age_s * 1e6).cast(pl.Duration("us")),
            }
        )
        .with_columns(
            street=pl.when(ok).then("_street"),
            number=pl.when(ok).then(pl.col("_number").cast(pl.String)),
            neighborhood=pl.when(ok).then("_neighborhood"),
            city=pl.when(ok | ~google).then(pl.lit("Porto Alegre")),
            geocoder=pl.when(google).then(pl.lit("google")).otherwise(pl.lit("offline")),
            geocode_status=pl.when(ok | ~google)
            .then(pl.lit("OK"))
            .otherwise(pl.lit("ZERO_RESULTS")),
        )
        .with_columns(
            postal_code=pl.lit(None, pl.String),
            state=pl.when(pl.col("city").is_not_null()).then(pl.lit("Rio Grande do Sul")),
            country=pl.when(pl.col("city").is_not_null()).then(pl.lit("Brasil")),
            formatted_address=pl.format("{}, {} - {}", "street", "number", "neighborhood"),
            place_id=pl.lit(None, pl.String),
            location_type=pl.when(pl.col("street").is_not_null()).then(pl.lit("ROOFTOP")),
        )
    )
    return frames.cast_frame(frame, frames.ADDRESSES_SCHEMA)


def rejects() -> pl.DataFrame:
    """A few rejects of each kind (``frames.REJECTS_SCHEMA``)."""
    reasons = ["missing_longitude"] * 5 + ["dms_mismatch"] * 3 + ["geocode_failed"] * 2
    reasons += ["unrecognized"] * 3
    comma = "decimal comma: write -30.04982864, not -30,04982864"
    return frames.cast_frame(
        pl.DataFrame(
            {
                "source": [f"data_points_{i % 3 + 1:02d}.txt" for i in range(len(reasons))],
                "line": [10 + 3 * i for i in range(len(reasons))],
                "reason": reasons,
                "text": [f"Latitude: <bad {i}>" for i in range(len(reasons))],
                "detail": [None] * 10 + [comma, comma, None],
            }
        ),
        frames.REJECTS_SCHEMA,
    )
