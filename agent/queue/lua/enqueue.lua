-- ARGV: ns group id file_path original inbox content_key metadata now run_after
local id, ck, now, run_after = ARGV[3], ARGV[7], tonumber(ARGV[9]), tonumber(ARGV[10])
local existing = redis.call('GET', k('active:' .. ck))
if existing then return existing end
redis.call('SET', k('active:' .. ck), id)
redis.call('SADD', k('inboxes'), ARGV[6])
redis.call('HSET', jobkey(id), 'job_id', id, 'file_path', ARGV[4], 'original_filename', ARGV[5],
  'inbox', ARGV[6], 'content_key', ck, 'metadata', ARGV[8], 'created_at', now,
  'updated_at', now, 'progress', 0, 'retries', 0, 'attempts', 0, 'message', '',
  'lease_token', '', 'claimed_by', '', 'entry', '')
redis.call('HSET', k('keys'), ck, id)
local seq = redis.call('INCR', k('seq'))
redis.call('HSET', jobkey(id), 'seq', seq)
redis.call('ZADD', k('jobs:' .. ARGV[6]), seq, id)
set_status(id, nil, 'queued', seq)
to_queue(id, run_after, now)
return id
