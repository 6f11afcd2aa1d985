-- ARGV: prefix, room, this node, may move ('1'; '0' right after this node
-- reconnected to Redis, when every liveness may have lapsed in the outage).
-- Where the SFU of an SFU room is: its owner while that node lives; else
-- (its node gone, not swept yet) the room moves now to the least-loaded
-- live SFU node. Returns {} for no such SFU room, else {owner ('' when it
-- has none), epoch, moved from ('' when it did not move, '-' when it had no
-- owner), members}.
local prefix, room = ARGV[1], ARGV[2]
local r = prefix .. ':r:' .. room
if redis.call('HGET', r, 'mode') ~= 'sfu' then return {} end
local owner = redis.call('HGET', r, 'sfu') or ''
local epoch = redis.call('HGET', r, 'se') or '0'
if owner ~= '' and (ARGV[4] ~= '1' or redis.call('EXISTS', prefix .. ':sfu:' .. owner) == 1) then
  return {owner, epoch, '', '0'}
end
-- Not now: wait for the owner (or, for a room Redis lost, its host's claim).
if ARGV[4] ~= '1' then return {'', epoch, '', '0'} end
local new = sfu_pick(prefix, ARGV[3])
if not new then return {'', epoch, '', '0'} end
epoch = sfu_give(prefix, r, room, new)
-- Moved from a node that is gone ('' when it had none left to move to).
return {new, epoch, owner == '' and '-' or owner, tostring(redis.call('HLEN', r .. ':m'))}
