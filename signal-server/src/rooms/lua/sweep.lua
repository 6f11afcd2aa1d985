-- ARGV: prefix. Removes every member whose node has no heartbeat; returns
-- room, peer, members left, room, peer, members left, ...
local prefix = ARGV[1]
local out = {}
for _, node in ipairs(redis.call('SMEMBERS', prefix .. ':nodes')) do
  if redis.call('EXISTS', prefix .. ':n:' .. node) == 0 then
    local nc = prefix .. ':n:' .. node .. ':c'
    for _, conn in ipairs(redis.call('SMEMBERS', nc)) do
      for _, room in ipairs(redis.call('SMEMBERS', prefix .. ':c:' .. conn)) do
        local r = remove(prefix, room, conn)
        if r then
          table.insert(out, room); table.insert(out, r[1]); table.insert(out, tostring(r[2]))
        end
      end
      redis.call('DEL', prefix .. ':c:' .. conn)
    end
    redis.call('DEL', nc)
    redis.call('SREM', prefix .. ':nodes', node)
  end
end
return out
