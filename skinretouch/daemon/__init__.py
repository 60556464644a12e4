"""The hot-folder daemon (``skinretouch watch``): files and processes only, never pixels.

watcher (watchdog) → :class:`~skinretouch.daemon.queue.JobQueue` → worker processes
running the pipeline; :mod:`~skinretouch.daemon.service` owns the lifecycle.
"""
