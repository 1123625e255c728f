-- The point of no return of an encode: checked right before the video is renamed into place.
-- KEYS[1]: the job's hash, KEYS[2]: its encode lease. ARGV[1]: the encoder's lease value.
-- Returns 1 if the job is still running and the lease is the caller's (the job is then
-- marked 'publishing', which cancel() can no longer undo), else 0.
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == 'done' or state == 'failed' or state == 'cancelled' then return 0 end
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'publishing', ARGV[1])
return 1
