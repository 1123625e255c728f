-- Update fields of a job's hash only if the record exists, so that a counter bumped after
-- Redis lost the record (restart, eviction, flush) never recreates it without an expiry.
-- KEYS[1]: the job's hash. ARGV: triples of (operation, field, value), where operation is
-- 'incr' (HINCRBY), 'incrfloat' (HINCRBYFLOAT), 'set' (HSET) or 'setnx' (HSETNX).
-- Returns 1 if the record exists (and was updated), 0 if not.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local commands = {incr = 'HINCRBY', incrfloat = 'HINCRBYFLOAT', set = 'HSET', setnx = 'HSETNX'}
for i = 1, #ARGV, 3 do
  redis.call(commands[ARGV[i]], KEYS[1], ARGV[i + 1], ARGV[i + 2])
end
return 1
