-- Seats held for a resume (shared by HOLD and SWEEP). A held seat stays in
-- the room's members under its lost connection; its peer entry reads
-- '!' .. conn (so events for it are kept, not sent), and P:held lists it
-- ("room\nconn", scored by its deadline in ms) until it resumes or expires.

-- Milliseconds on Redis's clock: one clock for every node.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Holds every seat of `conn` for `grace` ms; returns room, peer, room, peer, ...
local function hold_conn(prefix, conn, grace)
  local out = {}
  local deadline = now_ms() + grace
  local c = prefix .. ':c:' .. conn
  for _, room in ipairs(redis.call('SMEMBERS', c)) do
    local r = prefix .. ':r:' .. room
    local v = redis.call('HGET', r .. ':m', conn)
    if v then
      local id = cjson.decode(string.sub(v, string.find(v, '\n') + 1))['id']
      redis.call('HSET', r .. ':p', id, '!' .. conn)
      redis.call('ZADD', prefix .. ':held', deadline, room .. '\n' .. conn)
      table.insert(out, room); table.insert(out, id)
    end
  end
  redis.call('DEL', c)
  local node = string.sub(conn, 1, string.find(conn, '/') - 1)
  redis.call('SREM', prefix .. ':n:' .. node .. ':c', conn)
  return out
end
