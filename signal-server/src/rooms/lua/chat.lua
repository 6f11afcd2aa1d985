-- KEYS: room, members, history. ARGV: conn, entry ("bytes\tip\tjson"),
-- history size, bytes, history bytes per room, history bytes per address,
-- prefix, ip ('-': none), room name, message id.
-- Returns the room's size, 0 when the sender is not a member: a message is
-- only kept while its room exists. Keeps it within the room's bounds and its
-- address's, the oldest going first.
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 0 end
local count = redis.call('HLEN', KEYS[2])
local keep, bytes, room_max = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if keep == 0 or bytes > room_max then return count end
local prefix, ip = ARGV[7], ARGV[8]
redis.call('RPUSH', KEYS[3], ARGV[2])
local room_bytes = redis.call('HINCRBY', KEYS[1], 'hb', bytes)
if ip ~= '-' then
  local a = prefix .. ':ip:' .. ip
  redis.call('INCRBY', a .. ':b', bytes)
  local kept = redis.call('INCR', a .. ':k')
  redis.call('RPUSH', a .. ':o', ARGV[9] .. '\n' .. ARGV[10])
  -- Entries of messages gone otherwise pile up: drop the oldest.
  redis.call('LTRIM', a .. ':o', -(2 * kept + 32), -1)
end
while redis.call('LLEN', KEYS[3]) > keep or room_bytes > room_max do
  local old = redis.call('LPOP', KEYS[3])
  if not old then break end
  room_bytes = redis.call('HINCRBY', KEYS[1], 'hb', -forget(prefix, old))
end
if ip == '-' then return count end
local a = prefix .. ':ip:' .. ip
local ip_max = tonumber(ARGV[6])
while tonumber(redis.call('GET', a .. ':b') or '0') > ip_max do
  local ref = redis.call('LPOP', a .. ':o')
  if not ref then break end
  local nl = string.find(ref, '\n', 1, true)
  local r = prefix .. ':r:' .. string.sub(ref, 1, nl - 1)
  local needle = '"id":"' .. string.sub(ref, nl + 1) .. '"'
  for _, e in ipairs(redis.call('LRANGE', r .. ':h', 0, -1)) do
    if string.find(e, needle, 1, true) then
      redis.call('LREM', r .. ':h', 1, e)
      redis.call('HINCRBY', r, 'hb', -forget(prefix, e))
      break
    end
  end
end
return count
