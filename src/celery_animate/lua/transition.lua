-- Move a job to a new state unless it already reached a terminal one, so a late
-- or re-delivered task can never resurrect a failed or cancelled job.
-- KEYS[1]: the job's hash, KEYS[2]: the set of running jobs (left on reaching a terminal state),
-- KEYS[3]: the job's end channel, KEYS[4]: the set of ended jobs whose data is still to be
-- removed, KEYS[5]: the set of ended jobs whose end is still to be announced (only jobs whose
-- record has an on_done or webhook field join it) (celery_animate.keys names all five; nothing
-- here builds a name).
-- ARGV[1]: the job's id, its member in KEYS[2], KEYS[4] and KEYS[5].
-- ARGV[2]: the only state the move may start from ('' for any).
-- ARGV[3]: seconds the record lives once the new state is terminal (0: keep its expiry).
-- ARGV[4], ARGV[5]: 'state', the new state; then more field/value pairs to set.
-- On reaching a terminal state it publishes that state on KEYS[3], which wakes
-- clients waiting for the job (JobRecord.end_signal).
-- Returns 1 if the state changed, 0 if not, -1 if the record does not exist.
local current = redis.call('HGET', KEYS[1], 'state')
if not current then return -1 end
if current == 'done' or current == 'failed' or current == 'cancelled' then return 0 end
if ARGV[2] ~= '' and current ~= ARGV[2] then return 0 end
-- A video being renamed into place can no longer be cancelled (it can still fail).
if ARGV[5] == 'cancelled' and redis.call('HEXISTS', KEYS[1], 'publishing') == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
local new = ARGV[5]
local ttl = tonumber(ARGV[3])
if new == 'done' or new == 'failed' or new == 'cancelled' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZADD', KEYS[4], redis.call('TIME')[1], ARGV[1])
  if redis.call('HEXISTS', KEYS[1], 'on_done') == 1 or redis.call('HEXISTS', KEYS[1], 'webhook') == 1 then
    redis.call('ZADD', KEYS[5], redis.call('TIME')[1], ARGV[1])
  end
  if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
  redis.call('PUBLISH', KEYS[3], new)
end
return 1
