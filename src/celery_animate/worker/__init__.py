"""The Celery shell: the app (``app``), what a worker process keeps between tasks (``state``), and
the tasks, thin over the work layer (``tasks``)."""
