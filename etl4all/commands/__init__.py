"""The commands of the ``etl4all`` command line, one module per group of jobs."""
