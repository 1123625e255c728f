-- Claim the deletion of an ended job's data, so it happens once.
-- KEYS[1]: the job's hash. ARGV[1]: now.
-- Returns 1 if the caller claimed it, 0 if someone did before, -1 if there is no
-- record (then nothing is written: a hash created here would never expire).
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
return redis.call('HSETNX', KEYS[1], 'cleaned', ARGV[1])
