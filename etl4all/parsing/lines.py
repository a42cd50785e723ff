"""What a data_points line is: the patterns of its three kinds (Latitude, Longitude,
Distance, with or without DMS text), its label as a small integer, and when DMS text and a
decimal value disagree. Shared by the parse (:mod:`.parse`) and its rejects (:mod:`.rejects`).
"""

from __future__ import annotations

import polars as pl

DMS_TOLERANCE = 0.0005
"""Degrees the DMS text may differ from the decimal value (a rounded second is 0.00014°)."""

# ASCII classes ([0-9], [ \t]) keep the regex engine several times faster than \d and \s, and
# so does a mandatory DMS part: lines without DMS text go through a second, rarer pattern.
SP = "[ \t]"
NUM = r"([-+]?[0-9]+(?:\.[0-9]+)?)"
DMS = (
    rf"([0-9]{{1,3}}){SP}*°{SP}*([0-9]{{1,2}}){SP}*[′']{SP}*"
    rf"([0-9]{{1,2}}(?:\.[0-9]+)?){SP}*(?:″|''|\"){SP}*(HEMI){SP}+"
)
PATTERNS = {
    "lat": (
        "Latitude",
        rf"^Latitude{SP}*:{SP}*" + DMS.replace("HEMI", "[NSns]") + NUM + "$",
        rf"^Latitude{SP}*:{SP}*()()()(){NUM}$",
    ),
    "lon": (
        "Longitude",
        rf"^Longitude{SP}*:{SP}*" + DMS.replace("HEMI", "[EWew]") + NUM + "$",
        rf"^Longitude{SP}*:{SP}*()()()(){NUM}$",
    ),
    "dist": (
        "Distance",
        rf"^Distance{SP}*:{SP}*{NUM}{SP}*(?i:km){SP}+(?i:Bearing){SP}*:{SP}*{NUM}{SP}*°?$",
        None,
    ),
}
"""Per line kind: its label, its regex, and the regex for the variant without DMS text.
A label in another case is put in this one first (by the parse)."""
LAT, LON = r"^(?i:Latitude)", r"^(?i:Longitude)"
OTHER_LINE, LAT_LINE, LON_LINE, DIST_LINE = 0, 1, 2, 3
"""Line labels (none, Latitude, Longitude, Distance), as small integers: cheaper to shift and
compare than strings; a line's label says which record it belongs to, its format whether it
is read."""


def off(dms: str | pl.Expr, value: pl.Expr) -> pl.Expr:
    """Whether DMS text and decimal disagree (false where there is no DMS text)."""
    dms = pl.col(dms) if isinstance(dms, str) else dms
    return ((dms - value).abs() > DMS_TOLERANCE).fill_null(False)
