"""The Celery tasks, one module per stage: render, encode, periodic renders, the encoder probe.

:data:`celery_animate.worker.app.app` lists these modules in ``imports``, so a worker
registers every task whatever queue it serves.
"""
