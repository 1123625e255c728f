"""The embedded default: a private Redis and local prefork workers, started and stopped for you.

:class:`~celery_animate.client.embedded.redis_server.RedisServer` runs a
``redis-server`` on a free loopback port with a random password and no
persistence; :class:`~celery_animate.client.embedded.cluster.EmbeddedCluster` adds a
Celery worker forked from the calling process (so classes defined in
``__main__`` exist in it). Both die with their parent, also when it is killed.
"""
