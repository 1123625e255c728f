-- Reads frame-cache entries and marks those found as just used (their recency and expiry), so
-- that eviction takes the least recently used first.
-- KEYS[1]: the recency set (keys.cache_recency); KEYS[2..]: the entries. ARGV[1]: seconds an
-- entry outlives its last use. Returns the entries' values in order, nil where one is missing.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
for i = 2, #KEYS do
  local value = redis.call('GET', KEYS[i])
  if value then
    redis.call('ZADD', KEYS[1], 'XX', now, KEYS[i])
    redis.call('EXPIRE', KEYS[i], ARGV[1])
  end
  out[i - 1] = value
end
return out
