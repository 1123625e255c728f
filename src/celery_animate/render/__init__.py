"""Drawing frames: the animator contract and loading, the frame loop, one chunk of a job, automatic
blitting and what it knows of matplotlib (``mpl_internals`` alone reaches its private names)."""
