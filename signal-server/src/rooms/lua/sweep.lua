-- ARGV: prefix, grace ms. Takes out every member whose node has no
-- heartbeat: held for a resume when grace > 0, else removed. Returns
-- {{room, peer, ...} held, {room, peer, members left, new host or '', members' conns, ...} removed}.
local prefix, grace = ARGV[1], tonumber(ARGV[2])
local held, out = {}, {}
for _, node in ipairs(redis.call('SMEMBERS', prefix .. ':nodes')) do
  if redis.call('EXISTS', prefix .. ':n:' .. node) == 0 then
    local nc = prefix .. ':n:' .. node .. ':c'
    for _, conn in ipairs(redis.call('SMEMBERS', nc)) do
      if grace > 0 then
        for _, x in ipairs(hold_conn(prefix, conn, grace)) do table.insert(held, x) end
      else
        for _, room in ipairs(redis.call('SMEMBERS', prefix .. ':c:' .. conn)) do
          local r = remove(prefix, room, conn)
          if r then
            table.insert(out, room); table.insert(out, r[1]); table.insert(out, tostring(r[2])); table.insert(out, r[3]); table.insert(out, r[4])
          end
        end
        redis.call('DEL', prefix .. ':c:' .. conn)
      end
    end
    redis.call('DEL', nc)
    redis.call('SREM', prefix .. ':nodes', node)
  end
end
return {held, out}
