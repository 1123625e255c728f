"""Encoding frames into a video: whole, streaming, or in segments joined without re-encoding; the
encode lease; ``pvio_adapter`` alone knows parallel-video-io's internals."""
