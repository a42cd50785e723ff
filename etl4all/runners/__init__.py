"""Drivers of the stages: ``embedded`` (one process) and ``broker`` (services), plus ``wiring``."""
