-- Claims the jobs due to be announced for the worker that runs it, atomically: up to ARGV[2] ids
-- from KEYS[1] (the sorted set of ended jobs whose end is still to be announced, scored by when
-- they are due) whose score has come, each re-scored ARGV[1] seconds ahead. The worker removes
-- an id once it sent its announcements; a claim it never removes (it died in between) comes due
-- again, and another worker takes the job. Redis' clock scores them: one clock for every host.
-- KEYS[1]: celery_animate.keys.ANNOUNCE_JOBS. ARGV[1]: seconds a claim lasts. ARGV[2]: batch size.
-- Returns the ids claimed.
local now = tonumber(redis.call('TIME')[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(due) do
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), id)
end
return due
