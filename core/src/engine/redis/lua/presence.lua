-- A channel's presence, shared by every node: who is subscribed, each
-- entry kept alive by its node, so a node that dies takes its entries with
-- it within the ttl.
-- KEYS[1] sorted set: member -> expiry (ms, Redis's clock); KEYS[2] hash:
-- member -> user. Members are `NODE-CLIENT`.
-- ARGV[1] op: 'join' | 'leave' | 'read'; ARGV[2] ttl (ms); then for
-- 'join' MEMBER USER pairs (a node's refresh is a join of what it holds:
-- the expiry moves on, and an entry a lost join never wrote is written),
-- for 'leave' MEMBERs.
-- Returns {} for writes; for 'read' {member, user, member, user, ...} of the
-- entries not expired.
redis.replicate_commands()
local now = redis.call('time')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local ttl = tonumber(ARGV[2])
local op = ARGV[1]
if op == 'join' then
  for i = 3, #ARGV, 2 do
    redis.call('zadd', KEYS[1], now_ms + ttl, ARGV[i])
    redis.call('hset', KEYS[2], ARGV[i], ARGV[i + 1])
  end
elseif op == 'leave' then
  for i = 3, #ARGV do
    redis.call('zrem', KEYS[1], ARGV[i])
    redis.call('hdel', KEYS[2], ARGV[i])
  end
end
if op ~= 'read' then
  if redis.call('exists', KEYS[1]) == 1 then
    -- Both keys outlive their last writer by two ttls at most.
    redis.call('pexpire', KEYS[1], 2 * ttl)
    redis.call('pexpire', KEYS[2], 2 * ttl)
  end
  return {}
end
local gone = redis.call('zrangebyscore', KEYS[1], '-inf', now_ms)
for _, member in ipairs(gone) do
  redis.call('zrem', KEYS[1], member)
  redis.call('hdel', KEYS[2], member)
end
local out = {}
for _, member in ipairs(redis.call('zrange', KEYS[1], 0, -1)) do
  out[#out + 1] = member
  out[#out + 1] = redis.call('hget', KEYS[2], member) or ''
end
return out
