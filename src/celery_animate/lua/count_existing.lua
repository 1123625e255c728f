-- Count one more in a field of a job's hash (a chunk's deliveries, a segment's yields), only if
-- the job's record exists (a count bumped after Redis lost the record must not recreate it).
-- KEYS[1]: the job's hash. ARGV[1]: the field.
-- Returns the new count, or 0 without a record.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
