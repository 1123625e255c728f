-- Take a job's encode lease if nobody holds it. KEYS[1]: the lease, KEYS[2]: its
-- generation counter. ARGV[1]: the taker's random token, ARGV[2]: lease time in ms,
-- ARGV[3]: seconds the counter lives. Returns the new generation, or 0 if held.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local generation = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('SET', KEYS[1], generation .. ':' .. ARGV[1], 'PX', ARGV[2])
return generation
