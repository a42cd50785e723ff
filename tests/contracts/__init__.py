"""Contract tests: one base class per role; every backend's test module subclasses it."""
