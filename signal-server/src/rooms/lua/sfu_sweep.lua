-- ARGV: prefix, this node, moves: 'all' (every SFU node whose liveness
-- lapsed), 'self' (this node only: it is retiring its SFU), 'none' (only say
-- which live). Moves the SFU rooms of those nodes to the least-loaded live
-- one (none alive: the room keeps no owner until a signal finds one,
-- SFU_OWNER, or the node that still hosts it claims it, SFU_ANNOUNCE). Returns {moved, live,
-- simulcast}: moved = {room, new owner, epoch, old owner, members, ...};
-- live: '1' when some SFU node lives; simulcast: '1' when every live one
-- forwards simulcast.
local prefix = ARGV[1]
local moved = {}
local all = redis.call('HGETALL', prefix .. ':sfu')
local live, simulcast = '0', '1'
for i = 1, #all, 2 do
  local n = all[i]
  local lapsed = redis.call('EXISTS', prefix .. ':sfu:' .. n) == 0
  if lapsed and (ARGV[3] == 'all' or (ARGV[3] == 'self' and n == ARGV[2])) then
    redis.call('HDEL', prefix .. ':sfu', n)
    local rs = prefix .. ':sfu:' .. n .. ':rooms'
    for _, room in ipairs(redis.call('SMEMBERS', rs)) do
      local r = prefix .. ':r:' .. room
      if redis.call('HGET', r, 'sfu') == n then
        local new = sfu_pick(prefix, ARGV[2])
        if new then
          local epoch = sfu_give(prefix, r, room, new)
          for _, x in ipairs({room, new, epoch, n, tostring(redis.call('HLEN', r .. ':m'))}) do
            table.insert(moved, x)
          end
        else
          redis.call('HSET', r, 'sfu', '')
        end
      end
    end
    redis.call('DEL', rs)
  elseif not lapsed then
    live = '1'
    if string.match(all[i + 1], ' 1$') == nil then simulcast = '0' end
  end
end
if live == '0' then simulcast = '0' end
return {moved, live, simulcast}
