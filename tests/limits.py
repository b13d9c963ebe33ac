"""How long a test waits for a command, a subprocess or a server before calling it hung.

One limit for the whole suite, set to catch a hang, never slowness: on a laptop running other work, or
beside another ``make test``, a command that takes seconds on a quiet machine can take minutes. Checks
of how fast something must happen (a worker gone within 30 s of its parent's death) are separate and
say so where they are made.
"""

HANG_S = 1200  # 20 minutes: far above any single command of the suite on a loaded 2-core machine
