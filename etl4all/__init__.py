"""etl4all: GPS coordinate files to a warehouse of street addresses."""

__version__ = "0.1.0"
