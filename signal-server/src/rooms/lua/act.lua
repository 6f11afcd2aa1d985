-- A host control or a hand (PROTOCOL.md version 2). ARGV: prefix, room,
-- conn, kind ('hand', 'lock', 'mute', 'kick'), argument ('1'/'0' for hand
-- and lock; the peer id for mute and kick). Returns {'err', code} or
-- {'ok', actor id, members now, [target's connection ('!conn' if held),
-- [removed id, members left, new host or '']]}.
local prefix, room, conn, kind, arg = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local r = prefix .. ':r:' .. room
local m = r .. ':m'
local v = redis.call('HGET', m, conn)
if not v then return {'err', 'not_in_room'} end
local nl = string.find(v, '\n', 1, true)
local me = cjson.decode(string.sub(v, nl + 1))
if kind == 'hand' then
  me['hand'] = arg == '1'
  redis.call('HSET', m, conn, string.sub(v, 1, nl) .. cjson.encode(me))
  return {'ok', me['id'], tostring(redis.call('HLEN', m))}
end
if host_of(m) ~= conn then return {'err', 'forbidden'} end
if kind == 'lock' then
  redis.call('HSET', r, 'locked', arg)
  return {'ok', me['id'], tostring(redis.call('HLEN', m))}
end
if arg == me['id'] then return {'err', 'to_self'} end
local target = redis.call('HGET', r .. ':p', arg)
if not target then return {'err', 'unknown_peer'} end
if kind == 'mute' then return {'ok', me['id'], tostring(redis.call('HLEN', m)), target} end
-- kick: the seat goes, held or not, and its kept events and token with it
local tconn = target
if string.sub(target, 1, 1) == '!' then
  tconn = string.sub(target, 2)
  redis.call('ZREM', prefix .. ':held', room .. '\n' .. tconn)
  local k = r .. ':k:' .. arg
  redis.call('DEL', k, k .. ':b')
end
local gone = remove(prefix, room, tconn)
return {'ok', me['id'], tostring(gone[2]), target, gone[1], tostring(gone[2]), gone[3], gone[4]}
