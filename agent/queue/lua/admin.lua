-- ARGV: ns group id expected_from(csv) new progress message patch now
local id, new, now = ARGV[3], ARGV[5], tonumber(ARGV[9])
local h = jobkey(id)
if redis.call('EXISTS', h) == 0 then return 'missing' end
local cur = redis.call('HGET', h, 'status')
if not string.find(',' .. ARGV[4] .. ',', ',' .. cur .. ',', 1, true) then return 'bad:' .. cur end
if ARGV[6] ~= '' then redis.call('HSET', h, 'progress', ARGV[6]) end
if ARGV[7] ~= '' then redis.call('HSET', h, 'message', ARGV[7]) end
merge(id, ARGV[8])
redis.call('HSET', h, 'updated_at', now)
local score = tonumber(redis.call('HGET', h, 'seq'))
if new == cur then return 'ok' end
if cur == 'queued' then
  undelay(id)
  leave_stream(id)
  redis.call('HDEL', k('queued_paths'), redis.call('HGET', h, 'file_path'))
end
set_status(id, cur, new, score)
if new == 'queued' then
  local ck = redis.call('HGET', h, 'content_key')
  redis.call('SET', k('active:' .. ck), id)
  redis.call('HSET', h, 'retries', 0, 'finished_at', '', 'progress', 0, 'claimed_by', '')
  to_queue(id, now, now)
else
  finish(id, new, now)
end
return 'ok'
