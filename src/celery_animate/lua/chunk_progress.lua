-- Record that a chunk has ARGV[2] frames stored (and when: 'progress_at' for the job,
-- 'rendered_at' for its rendering alone), and move the job to 'encoding' once every
-- frame is. Progress is kept per chunk and only ever raised, so a chunk delivered twice
-- counts its frames once. Never creates the record: after a Redis
-- flush nothing is written and nil comes back.
-- KEYS[1]: the job's hash. ARGV[1]: chunk number. ARGV[2]: frames stored so far. ARGV[3]: now.
-- Returns the job's state, which workers use to stop early when the job ended.
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return nil end
local field = 'chunk:' .. ARGV[1]
local old = tonumber(redis.call('HGET', KEYS[1], field) or '0')
local new = tonumber(ARGV[2])
if new > old then
  redis.call('HSET', KEYS[1], field, new, 'progress_at', ARGV[3], 'rendered_at', ARGV[3])
  local rendered = redis.call('HINCRBY', KEYS[1], 'rendered', new - old)
  local total = tonumber(redis.call('HGET', KEYS[1], 'total') or '0')
  if rendered >= total and (state == 'queued' or state == 'rendering') then
    state = 'encoding'
    redis.call('HSET', KEYS[1], 'state', state)
  end
end
return state
