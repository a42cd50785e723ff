"""The exit codes of every command and worker, in one table (README.md, Guarantees, too).

=====  ==============  =====================================================================
code   name            meaning
=====  ==============  =====================================================================
0      ``DONE``        everything asked was done
1      ``TRANSIENT``   a temporary fault, or work left for later (files another worker
                       holds): run the same command again; nothing is lost
2      ``CONFIG``      a configuration or usage error: fix it first, a rerun fails the same
3      ``ATTENTION``   done, but a person must look: files held (a shrink), dead letters
130    ``INTERRUPTED`` stopped by Ctrl-C
=====  ==============  =====================================================================
"""

DONE = 0
TRANSIENT = 1
CONFIG = 2
ATTENTION = 3
INTERRUPTED = 130
