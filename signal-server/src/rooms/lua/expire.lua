-- ARGV: prefix, at most how many. Ends held seats whose deadline passed;
-- each is claimed by the node whose ZREM took it, so exactly one node
-- announces it. Returns {seats still held, room, peer, members left, new host or '', members' conns, ...}.
local prefix = ARGV[1]
local held = prefix .. ':held'
local out = {0}
for _, e in ipairs(redis.call('ZRANGEBYSCORE', held, '-inf', now_ms(), 'LIMIT', 0, tonumber(ARGV[2]))) do
  if redis.call('ZREM', held, e) == 1 then
    local nl = string.find(e, '\n', 1, true)
    local room, conn = string.sub(e, 1, nl - 1), string.sub(e, nl + 1)
    local r = remove(prefix, room, conn)
    if r then
      local k = prefix .. ':r:' .. room .. ':k:' .. r[1]
      redis.call('DEL', k, k .. ':b')
      table.insert(out, room); table.insert(out, r[1]); table.insert(out, tostring(r[2])); table.insert(out, r[3]); table.insert(out, r[4])
    end
  end
end
out[1] = redis.call('ZCARD', held)
return out
