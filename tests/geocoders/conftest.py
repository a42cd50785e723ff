"""Fixtures of the geocoder tests: the fake Google/Nominatim API on loopback.

Other test folders can use the same server with ``from geocoders.fake_api import FakeApi``
(``tests/`` is on ``sys.path`` through the root conftest) or import this fixture.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_api import FakeApi


@pytest.fixture
def fake_api() -> Iterator[FakeApi]:
    """A fresh fake geocoding API (``.google_url``, ``.nominatim_url``, ``.key``, ``.calls``)."""
    with FakeApi() as api:
        yield api
