-- KEYS: members, history; ARGV: conn, message json, history size.
-- Returns the room's size, 0 when the sender is not a member: a message
-- is only kept while its room exists.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
local keep = tonumber(ARGV[3])
if keep > 0 then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  redis.call('LTRIM', KEYS[2], -keep, -1)
end
return redis.call('HLEN', KEYS[1])
