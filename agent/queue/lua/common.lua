local ns = ARGV[1]
local function k(name) return ns .. ':' .. name end
local function jobkey(id) return ns .. ':job:' .. id end
local function inbox_of(id) return redis.call('HGET', jobkey(id), 'inbox') or '' end
local function set_status(id, old, new, score)
  if old then redis.call('ZREM', k('status:' .. old), id) end
  redis.call('ZADD', k('status:' .. new), score, id)
  redis.call('HSET', jobkey(id), 'status', new)
  -- queued jobs per inbox, for the backlog of each inbox
  if old == 'queued' then redis.call('ZREM', k('queued:' .. inbox_of(id)), id) end
  if new == 'queued' then redis.call('ZADD', k('queued:' .. inbox_of(id)), score, id) end
end
local function undelay(id)
  redis.call('ZREM', k('delayed'), id)
  redis.call('ZREM', k('delayed:' .. inbox_of(id)), id)
end
-- JSON merge patch (RFC 7396), as SQLite's json_patch: objects merge key by key, recursively;
-- null removes; anything else (an array too) replaces. A non-empty table without [1] is an
-- object (the agent never sends an empty object or array in a patch: agent/queue/record.py).
local function is_object(value)
  return type(value) == 'table' and next(value) ~= nil and value[1] == nil
end
local function merge_patch(target, patch)
  if not is_object(patch) then return patch end
  if not is_object(target) then target = {} end
  for key, value in pairs(patch) do
    if value == cjson.null then target[key] = nil else target[key] = merge_patch(target[key], value) end
  end
  return target
end
local function merge(id, patch)
  if patch == nil or patch == '' then return end
  local cur = cjson.decode(redis.call('HGET', jobkey(id), 'metadata') or '{}')
  cur = merge_patch(cur, cjson.decode(patch))
  local text = cjson.encode(cur)
  if text == '[]' then text = '{}' end
  redis.call('HSET', jobkey(id), 'metadata', text)
end
local function leave_stream(id)
  local entry = redis.call('HGET', jobkey(id), 'entry')
  if entry and entry ~= '' then
    redis.call('XACK', k('stream'), ARGV[2], entry)
    redis.call('XDEL', k('stream'), entry)
    redis.call('HSET', jobkey(id), 'entry', '')
  end
end
local function to_queue(id, run_after, now, front)
  if front then
    redis.call('RPUSH', k('front'), id)
  elseif run_after > now then
    redis.call('ZADD', k('delayed'), run_after, id)
    redis.call('ZADD', k('delayed:' .. inbox_of(id)), run_after, id)
  else
    local entry = redis.call('XADD', k('stream'), '*', 'job', id)
    redis.call('HSET', jobkey(id), 'entry', entry)
  end
  redis.call('HSET', jobkey(id), 'run_after', run_after)
  redis.call('HSET', k('queued_paths'), redis.call('HGET', jobkey(id), 'file_path'), id)
end
local function finish(id, status, now)
  local h = jobkey(id)
  redis.call('HSET', h, 'finished_at', now)
  local ck = redis.call('HGET', h, 'content_key')
  if redis.call('GET', k('active:' .. ck)) == id then redis.call('DEL', k('active:' .. ck)) end
  if status ~= 'completed' then
    redis.call('XADD', k('dead'), 'MAXLEN', '~', 100000, '*', 'job', id, 'status', status)
  end
end
