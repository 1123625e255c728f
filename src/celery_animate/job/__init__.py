"""A job: its record and spec in Redis, its messages, its state and its end (``lifecycle``), the
render window, and the watchdog and recovery that make every job end."""
