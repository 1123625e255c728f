"""The ``celery-animate`` command: its parser and entry point (:mod:`.parser`), the commands
(:mod:`.commands`) and the deployment checks (:mod:`.doctor`)."""

from celery_animate.cli.parser import main

__all__ = ["main"]
