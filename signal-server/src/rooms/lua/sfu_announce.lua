-- ARGV: prefix, node, liveness ttl ms, load ("<peers> <simulcast 0|1>"),
-- then the SFU rooms the node hosts now. Says the node's SFU lives, and
-- squares its set of owned rooms with what it hosts:
-- - a hosted room whose hash names this node, or no owner ('': its owner
--   was gone with no SFU node to move to, or Redis lost it and a member's
--   node put it back), or that Redis lost and nobody put back yet, is this
--   node's (in its set, named in the hash when it exists), so that a
--   restore gives it back here (JOIN) and its calls go on;
-- - a hosted room whose hash names another owner moved away: returned,
--   for the node to end it;
-- - a room of the set that no longer exists (ended) leaves the set.
local prefix, node = ARGV[1], ARGV[2]
local set = prefix .. ':sfu:' .. node .. ':rooms'
redis.call('SET', prefix .. ':sfu:' .. node, 1, 'PX', ARGV[3])
redis.call('HSET', prefix .. ':sfu', node, ARGV[4])
local hosted, gone = {}, {}
for i = 5, #ARGV do
  local room = ARGV[i]
  hosted[room] = true
  local r = prefix .. ':r:' .. room
  local owner = redis.call('HGET', r, 'sfu')
  if owner == node or not owner or owner == '' then
    if owner == '' then redis.call('HSET', r, 'sfu', node) end
    redis.call('SADD', set, room)
  else
    table.insert(gone, room)
  end
end
for _, room in ipairs(redis.call('SMEMBERS', set)) do
  if not hosted[room] and redis.call('EXISTS', prefix .. ':r:' .. room) == 0 then
    redis.call('SREM', set, room)
  end
end
return gone
