-- Puts one entry into a frame cache and evicts its least recently used entries until the cache
-- holds at most ARGV[2] bytes, atomically, so that caches written by many workers at once keep
-- their bound. The recency set and the size hash hold full entry key names, which eviction reads
-- back and deletes (they are never built here).
-- KEYS[1]: the entry (keys.cache_entry). KEYS[2]: the recency set (keys.cache_recency).
-- KEYS[3]: the size hash (keys.cache_sizes). ARGV[1]: the entry's bytes. ARGV[2]: the most bytes
-- the cache may hold. ARGV[3]: seconds an entry, and the cache's index, outlive their last use.
-- Returns the cache's bytes after the put.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local old = tonumber(redis.call('HGET', KEYS[3], KEYS[1]) or '0')
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
redis.call('HSET', KEYS[3], KEYS[1], #ARGV[1])
redis.call('ZADD', KEYS[2], now, KEYS[1])
local total = redis.call('HINCRBY', KEYS[3], 'total', #ARGV[1] - old)
local limit = tonumber(ARGV[2])
while total > limit do
  local oldest = redis.call('ZPOPMIN', KEYS[2])
  if #oldest == 0 then break end
  local size = tonumber(redis.call('HGET', KEYS[3], oldest[1]) or '0')
  redis.call('HDEL', KEYS[3], oldest[1])
  redis.call('DEL', oldest[1])
  total = redis.call('HINCRBY', KEYS[3], 'total', -size)
end
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('EXPIRE', KEYS[3], ARGV[3])
return total
