-- ARGV: prefix, node, liveness ttl ms, load ("<peers> <simulcast 0|1>"),
-- then the SFU rooms the node hosts now. Says the node's SFU lives, and
-- squares its set of owned rooms with what it hosts:
-- - a hosted room whose hash names this node, or no owner ('': its owner
--   was gone with no SFU node to move to, or a member's node put back a
--   room Redis lost), is this node's: in its set, named in the hash;
-- - a hosted room that has no hash is returned as an orphan: Redis lost it
--   (the node keeps it while it has connections, and claims it here so
--   that a restore gives it back to this node: JOIN) or it ended and the
--   last leave never reached the node (it ends it once no connection is
--   left);
-- - a hosted room whose hash names another owner moved away: returned
--   with its epoch and member count, for the node to end it and to tell
--   its members (some may have missed `sfu-moved`);
-- - a room of the set that no longer exists (ended) leaves the set.
-- Returns {gone: {room, owner, epoch, members, ...}, orphans: {room, ...}}.
local prefix, node = ARGV[1], ARGV[2]
local set = prefix .. ':sfu:' .. node .. ':rooms'
redis.call('SET', prefix .. ':sfu:' .. node, 1, 'PX', ARGV[3])
redis.call('HSET', prefix .. ':sfu', node, ARGV[4])
local hosted, gone, orphans = {}, {}, {}
for i = 5, #ARGV do
  local room = ARGV[i]
  hosted[room] = true
  local r = prefix .. ':r:' .. room
  local owner = redis.call('HGET', r, 'sfu')
  if owner == node or owner == '' then
    if owner == '' then redis.call('HSET', r, 'sfu', node) end
    redis.call('SADD', set, room)
  elseif not owner then
    redis.call('SADD', set, room)
    table.insert(orphans, room)
  else
    redis.call('SREM', set, room)
    for _, x in ipairs({room, owner, redis.call('HGET', r, 'se') or '0', tostring(redis.call('HLEN', r .. ':m'))}) do
      table.insert(gone, x)
    end
  end
end
for _, room in ipairs(redis.call('SMEMBERS', set)) do
  if not hosted[room] and redis.call('EXISTS', prefix .. ':r:' .. room) == 0 then
    redis.call('SREM', set, room)
  end
end
return {gone, orphans}
