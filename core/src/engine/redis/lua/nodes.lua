-- Every live node's figures, so /api/info and /api/channels on any node can
-- speak for all of them: each core of each node writes a small record with
-- its counts, and the channels its connections subscribe to, every third
-- of the ttl; a node that dies stops writing and its records expire.
-- KEYS[1] sorted set: member -> expiry (ms, Redis's clock); KEYS[2] hash:
-- member -> record (JSON). Members are `NODE-CORE`; a member's channel
-- counts are the hash named ARGV[3] .. member (same hash tag as the keys).
-- ARGV[1] op: 'write' | 'read'; ARGV[2] ttl (ms); ARGV[3] the count
-- hashes' prefix.
-- 'write': ARGV[4] member, ARGV[5] record, then CHANNEL COUNT pairs (the
-- member's whole set: what it no longer lists is gone).
-- 'read': ARGV[4] '1' to return channel counts, ARGV[5] the channel prefix
-- they must start with.
-- Returns {} for 'write'; for 'read' {{member, record, {channel, count,
-- ...}}, ...} of the members not expired.
redis.replicate_commands()
local now = redis.call('time')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local ttl = tonumber(ARGV[2])
if ARGV[1] == 'write' then
  local member = ARGV[4]
  local counts = ARGV[3] .. member
  redis.call('zadd', KEYS[1], now_ms + ttl, member)
  redis.call('hset', KEYS[2], member, ARGV[5])
  redis.call('del', counts)
  for i = 6, #ARGV, 2 do
    redis.call('hset', counts, ARGV[i], ARGV[i + 1])
  end
  -- Every key outlives its last writer by two ttls at most.
  redis.call('pexpire', counts, 2 * ttl)
  redis.call('pexpire', KEYS[1], 2 * ttl)
  redis.call('pexpire', KEYS[2], 2 * ttl)
  return {}
end
local gone = redis.call('zrangebyscore', KEYS[1], '-inf', now_ms)
for _, member in ipairs(gone) do
  redis.call('zrem', KEYS[1], member)
  redis.call('hdel', KEYS[2], member)
  redis.call('del', ARGV[3] .. member)
end
local want = ARGV[4] == '1'
local prefix = ARGV[5] or ''
local out = {}
for _, member in ipairs(redis.call('zrange', KEYS[1], 0, -1)) do
  local record = redis.call('hget', KEYS[2], member)
  if record then
    local counts = {}
    if want then
      local all = redis.call('hgetall', ARGV[3] .. member)
      for i = 1, #all, 2 do
        if string.sub(all[i], 1, #prefix) == prefix then
          counts[#counts + 1] = all[i]
          counts[#counts + 1] = all[i + 1]
        end
      end
    end
    out[#out + 1] = {member, record, counts}
  end
end
return out
