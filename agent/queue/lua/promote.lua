-- ARGV: ns group now
local due = redis.call('ZRANGEBYSCORE', k('delayed'), '-inf', ARGV[3], 'LIMIT', 0, 500)
for _, id in ipairs(due) do
  undelay(id)
  local entry = redis.call('XADD', k('stream'), '*', 'job', id)
  redis.call('HSET', jobkey(id), 'entry', entry)
end
return #due
