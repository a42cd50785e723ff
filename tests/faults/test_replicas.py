"""Fault scenario: replicas of every stage racing for the same files and batches."""

from __future__ import annotations

from harness import MARKS, Pipeline

pytestmark = MARKS


def test_two_extractors_three_transformers_two_loaders_race(pipeline: Pipeline) -> None:
    pipeline.put_files(files=12, points=300, seed=21)
    pipeline.start(extract=2, transform=3, load=2)
    pipeline.drain()
    pipeline.report("replicas=2/3/2 " + pipeline.verify())
