"""The Celery tasks: render, encode (the streaming encoder, the chord's callback, a segment),
periodic renders, the encoder probe; ``base`` holds the policy they share. No task module imports
another.

:data:`celery_animate.worker.app.app` lists these modules in ``imports``, so a worker
registers every task whatever queue it serves.
"""
