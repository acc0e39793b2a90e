-- ARGV: ns group consumer token worker now timeout_at [entry id]
-- Reads the next entry itself (XREADGROUP in the script: one round trip per claim), or takes
-- the entry given (one re-delivered by XAUTOCLAIM). Stale entries are dropped on the way.
local now = tonumber(ARGV[6])
local function lease(id)
  local h = jobkey(id)
  redis.call('HSET', h, 'lease_token', ARGV[4], 'claimed_by', ARGV[5], 'updated_at', now,
    'timeout_at', ARGV[7])
  local first = redis.call('HGET', h, 'started_at')
  if not first or first == '' then redis.call('HSET', h, 'started_at', now) end  -- the first start
  redis.call('HINCRBY', h, 'attempts', 1)
  redis.call('HDEL', k('queued_paths'), redis.call('HGET', h, 'file_path'))
  set_status(id, 'queued', 'processing', tonumber(redis.call('HGET', h, 'seq')))
  redis.call('ZADD', k('leases'), ARGV[7], id)
  return redis.call('HGETALL', h)
end
-- Jobs given back uncounted (a shutdown) wait in the front lane and are claimed first.
while not ARGV[8] do
  local id = redis.call('LPOP', k('front'))
  if not id then break end
  local h = jobkey(id)
  if redis.call('HGET', h, 'status') == 'queued' and redis.call('HGET', h, 'entry') == '' then
    return lease(id)
  end
end
for _ = 1, 100 do
  local entry, id
  if ARGV[8] then
    entry, id = ARGV[8], ARGV[9]
  else
    local got = redis.call('XREADGROUP', 'GROUP', ARGV[2], ARGV[3], 'COUNT', 1,
                           'STREAMS', k('stream'), '>')
    if not got then return false end
    entry = got[1][2][1][1]
    id = got[1][2][1][2][2]
  end
  local h = jobkey(id)
  if redis.call('HGET', h, 'status') == 'queued' and redis.call('HGET', h, 'entry') == entry then
    return lease(id)
  end
  redis.call('XACK', k('stream'), ARGV[2], entry)
  redis.call('XDEL', k('stream'), entry)
  if ARGV[8] then return false end
end
return false
