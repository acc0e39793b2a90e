-- ARGV: ns group id token new progress message patch now run_after retries front uncounted
local id, new, now = ARGV[3], ARGV[5], tonumber(ARGV[9])
local h = jobkey(id)
if redis.call('EXISTS', h) == 0 then return 'missing' end
if redis.call('HGET', h, 'status') ~= 'processing' then return 'lost' end
if ARGV[4] ~= '*' and redis.call('HGET', h, 'lease_token') ~= ARGV[4] then return 'lost' end
if ARGV[6] ~= '' then redis.call('HSET', h, 'progress', ARGV[6]) end
if ARGV[7] ~= '' then redis.call('HSET', h, 'message', ARGV[7]) end
if ARGV[11] ~= '' then redis.call('HSET', h, 'retries', ARGV[11]) end
merge(id, ARGV[8])
redis.call('HSET', h, 'updated_at', now)
if new == 'processing' then return redis.call('HGETALL', h) end
redis.call('HSET', h, 'lease_token', '', 'timeout_at', '')
redis.call('ZREM', k('leases'), id)
leave_stream(id)
local score = tonumber(redis.call('HGET', h, 'seq'))
set_status(id, 'processing', new, score)
if new == 'queued' then
  redis.call('HSET', h, 'claimed_by', '')
  if ARGV[13] == '1' and tonumber(redis.call('HGET', h, 'attempts')) > 0 then
    redis.call('HINCRBY', h, 'attempts', -1)
  end
  to_queue(id, tonumber(ARGV[10]), now, ARGV[12] == '1')
else
  finish(id, new, now)
end
return redis.call('HGETALL', h)
