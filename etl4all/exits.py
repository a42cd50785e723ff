"""The exit codes of every command and worker; what each means and what to do:
docs/guarantees.md (Exit codes).
"""

DONE = 0
TRANSIENT = 1
CONFIG = 2
ATTENTION = 3
INTERRUPTED = 130
