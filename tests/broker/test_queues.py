"""The queue topology: names, the dead-letter exchange and the declare arguments."""

from __future__ import annotations

import dataclasses

import pytest

from etl4all.broker import queues
from etl4all.broker.queues import QueueSpec, Topology
from etl4all.errors import ConfigError


def test_names_under_the_prefix() -> None:
    topology = Topology("acme", max_deliveries=5)
    assert topology.points == queues.name("acme", queues.POINTS) == "acme.points"
    assert topology.addresses == "acme.addresses"
    assert topology.dead == "acme.dead"
    assert topology.dead_letter_exchange == "acme.dlx"
    assert topology.work_queues == ("acme.points", "acme.addresses")


def test_defaults() -> None:
    assert Topology() == Topology("etl4all", 3)


def test_arguments_of_every_queue() -> None:
    work = {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": "acme.dlx",
        "x-delivery-limit": 5,
    }
    assert Topology("acme", 5).queues == (
        QueueSpec("acme.points", work),
        QueueSpec("acme.addresses", work),
        QueueSpec("acme.dead", {"x-queue-type": "quorum"}),
    )


def test_is_frozen_data() -> None:
    topology = Topology()
    with pytest.raises(dataclasses.FrozenInstanceError):
        topology.prefix = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        topology.queues[0].arguments["x-delivery-limit"] = 99  # type: ignore[index]


def test_an_empty_prefix_is_a_config_error() -> None:
    """The range of ``max_deliveries`` is checked once, by ``Settings``."""
    with pytest.raises(ConfigError):
        Topology("", 3)
