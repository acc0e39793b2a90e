-- ARGV: ns group id now max_retries base max_delay message only_expired
local id, now = ARGV[3], tonumber(ARGV[4])
local h = jobkey(id)
if redis.call('HGET', h, 'status') ~= 'processing' then return '' end
if ARGV[9] == '1' and tonumber(redis.call('HGET', h, 'timeout_at') or '0') >= now then return '' end
local retries = tonumber(redis.call('HGET', h, 'retries'))
redis.call('HSET', h, 'lease_token', '', 'timeout_at', '', 'updated_at', now)
redis.call('ZREM', k('leases'), id)
leave_stream(id)
local score = tonumber(redis.call('HGET', h, 'seq'))
if retries < tonumber(ARGV[5]) then
  local delay = math.min(tonumber(ARGV[7]), tonumber(ARGV[6]) * (2 ^ retries))
  redis.call('HSET', h, 'retries', retries + 1, 'claimed_by', '', 'message', ARGV[8] .. '; retrying')
  set_status(id, 'processing', 'queued', score)
  to_queue(id, now + delay, now)
  return 'queued'
end
local final = ARGV[10]
redis.call('HSET', h, 'message', ARGV[8] .. '; no retries left')
set_status(id, 'processing', final, score)
finish(id, final, now)
return final
