-- A channel's epoch, top offset and the history from an offset on, as one
-- consistent snapshot (no publish can run between the reads).
-- KEYS[1] meta hash, KEYS[2] history stream.
-- ARGV[1] epoch to create if the channel has none, ARGV[2] meta ttl (s),
-- ARGV[3] first offset wanted ('' for none), ARGV[4] history ttl (ms).
-- Returns {epoch, top, {offset, payload, offset, payload, ...}}, entries
-- older than the history ttl left out.
redis.replicate_commands()
local epoch = redis.call('hget', KEYS[1], 'e')
if not epoch then
  -- Create the epoch now so the publishes that follow use the one this
  -- subscriber was told.
  epoch = ARGV[1]
  redis.call('del', KEYS[2])
  redis.call('hset', KEYS[1], 'e', epoch)
  redis.call('expire', KEYS[1], ARGV[2])
end
local top = tonumber(redis.call('hget', KEYS[1], 't') or '0')
local out = {}
if ARGV[3] ~= '' then
  local now = redis.call('time')
  local oldest_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
    - tonumber(ARGV[4])
  local entries = redis.call('xrange', KEYS[2], ARGV[3] .. '-0', '+')
  for _, entry in ipairs(entries) do
    local fields = entry[2]
    if tonumber(fields[2]) >= oldest_ms then
      out[#out + 1] = string.match(entry[1], '^(%d+)')
      out[#out + 1] = fields[4]
    end
  end
end
return {epoch, top, out}
