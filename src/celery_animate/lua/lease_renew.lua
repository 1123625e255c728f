-- Extend a lease its holder still has. KEYS[1]: the lease. ARGV[1]: '<generation>:<token>',
-- ARGV[2]: lease time in ms, or '0' to release it. Returns 1 if it was still held, else 0.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '0' then
  redis.call('DEL', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
