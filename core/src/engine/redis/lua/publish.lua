-- Number, store and broadcast one publication, atomically.
-- KEYS[1] meta hash, KEYS[2] history stream.
-- ARGV[1] epoch to create if the channel has none, ARGV[2] payload,
-- ARGV[3] history size (0: keep none), ARGV[4] history ttl (s),
-- ARGV[5] meta ttl (s), ARGV[6] pub/sub channel, ARGV[7] publish command.
-- Returns {offset, epoch}.
redis.replicate_commands() -- Redis < 7: allows TIME below; a no-op on 7.
local epoch = redis.call('hget', KEYS[1], 'e')
if not epoch then
  -- A new epoch: whatever history survived belongs to the old one.
  epoch = ARGV[1]
  redis.call('del', KEYS[2])
  redis.call('hset', KEYS[1], 'e', epoch)
end
local offset = redis.call('hincrby', KEYS[1], 't', 1)
redis.call('expire', KEYS[1], ARGV[5])
if ARGV[3] ~= '0' then
  local now = redis.call('time')
  local ms = now[1] .. string.format('%03d', math.floor(tonumber(now[2]) / 1000))
  redis.call('xadd', KEYS[2], 'MAXLEN', ARGV[3], offset .. '-0', 't', ms, 'd', ARGV[2])
  redis.call('expire', KEYS[2], ARGV[4])
end
redis.call(ARGV[7], ARGV[6], offset .. ':' .. epoch .. ':' .. ARGV[2])
return {offset, epoch}
