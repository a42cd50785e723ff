"""Operators' commands beside the drivers: ``check``, ``status``, ``estimate``, ``regeocode``."""
