"""Every backend of every role table matches its role's Protocol, signature by signature.

``isinstance`` against a runtime-checkable Protocol only looks at method names; this test
compares each method's parameters (names, kinds, defaults) and evaluated type hints, so a
backend cannot drift from the contract its callers are typed against.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from etl4all import broker, geocoders, lookup, sources, state, urls, warehouse
from etl4all.broker.base import Broker, BrokerAdmin
from etl4all.broker.dead import DeadLetters
from etl4all.geocoders.base import Geocoder
from etl4all.lookup.base import Lookup
from etl4all.lookup.warehouse import WarehouseLookup
from etl4all.sources.base import Source
from etl4all.state.base import FileLedger, GeocodeCache
from etl4all.warehouse.base import Warehouse, WarehouseAdmin

ROLES: list[tuple[Mapping[str, tuple[str, str]], tuple[type, ...]]] = [
    (sources.SCHEMES, (Source,)),
    (geocoders.NAMES, (Geocoder,)),
    (state.SCHEMES, (FileLedger, GeocodeCache)),
    (lookup.SCHEMES, (Lookup,)),
    (warehouse.SCHEMES, (Warehouse, WarehouseAdmin)),
    (broker.SCHEMES, (Broker, BrokerAdmin, DeadLetters)),
]
CASES = [
    pytest.param(urls.load_class("role", key, table), protocol, id=f"{key}-{protocol.__name__}")
    for table, protocols in ROLES
    for key in table
    for protocol in protocols
] + [pytest.param(WarehouseLookup, Lookup, id="warehouse-Lookup")]


def members(protocol: type) -> list[str]:
    """The methods and attributes a Protocol declares (its own, not ``object``'s)."""
    names = set(typing.get_type_hints(protocol))
    for klass in protocol.__mro__:
        if klass in (object, typing.Protocol, typing.Generic):
            continue
        names |= {n for n, v in vars(klass).items() if callable(v) and not n.startswith("_")}
    return sorted(names | {"close", "__enter__", "__exit__"})


def has(backend: type, name: str) -> bool:
    """Whether the class has ``name``, or its ``__init__`` sets ``self.<name>``."""
    return hasattr(backend, name) or name in backend.__init__.__code__.co_names


def hints(func: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func)
    except NameError:  # a name imported only for type checking: compare the text instead
        return dict(func.__annotations__)


def shape(func: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
    """(name, kind, default) of every parameter but ``self``."""
    params = list(inspect.signature(func).parameters.values())[1:]
    return [(p.name, p.kind, p.default) for p in params]


@pytest.mark.parametrize(("backend", "protocol"), CASES)
def test_backend_matches_its_protocol(backend: type, protocol: type) -> None:
    for name in members(protocol):
        assert has(backend, name), f"{backend.__name__} lacks {name}"
        wanted, actual = getattr(protocol, name, None), getattr(backend, name, None)
        if not callable(wanted) or name in ("__enter__", "__exit__"):
            continue
        assert shape(actual) == shape(wanted), f"{backend.__name__}.{name} parameters"
        expected_hints, actual_hints = hints(wanted), hints(actual)
        for param, hint in expected_hints.items():
            got = actual_hints.get(param)
            assert same_or_narrower(got, hint, param), f"{backend.__name__}.{name}({param})"


def same_or_narrower(got: Any, hint: Any, param: str) -> bool:
    """Parameters must match exactly; a return may name a class where the Protocol names a
    Protocol (``Iterator[MemoryDelivery]`` for ``Iterator[Delivery]``)."""
    if got == hint:
        return True
    if param != "return" or typing.get_origin(got) != typing.get_origin(hint):
        return False
    pairs = zip(typing.get_args(got), typing.get_args(hint), strict=True)
    return all(a == b or getattr(b, "_is_protocol", False) for a, b in pairs)


@pytest.mark.parametrize(
    "roles",
    [(Warehouse, WarehouseAdmin), (Broker, BrokerAdmin, DeadLetters)],
    ids=["warehouse", "broker"],
)
def test_the_roles_of_a_backend_share_no_method(roles: tuple[type, ...]) -> None:
    """Issue 19: the data path and the operator's path shared one interface. Each method
    belongs to one role; they share only closing and the broker's topology."""
    shared = {"close", "__enter__", "__exit__", "topology"}
    owned = [set(members(role)) - shared for role in roles]
    for index, first in enumerate(owned):
        for second in owned[index + 1 :]:
            assert first.isdisjoint(second)
