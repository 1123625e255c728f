"""``python -m celery_animate.cli``: the ``celery-animate`` command."""

import sys

from celery_animate.cli.parser import main

sys.exit(main())
