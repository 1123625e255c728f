"""What runs where the user is: ``make_video`` and ``submit`` (``animator``, ``dispatch``), a job's
handle (``render_job``), progress bars, the one-process path and the embedded cluster."""
