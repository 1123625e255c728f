"""An existing Celery project that enqueues renders: its own app, its own queue, a shared broker.

    celery -A examples.existing_project.app worker -Q reports        # the project's own worker
    celery -A celery_animate worker -Q render                         # celery-animate's workers,
    celery -A celery_animate worker -Q gpu                            # on the same broker

The project's task calls ``Animator.submit`` like any other client: that only
writes the job to Redis and sends celery-animate's own task messages to its
queues; the project's app never runs celery-animate tasks, and celery-animate's
workers never run the project's. A second task follows the job (with
``RenderJob``), as a web view or a chained task would.
"""
