-- Removes one member; shared by LEAVE and SWEEP. Returns {peer id, members left}.
local function remove(prefix, room, conn)
  local r = prefix .. ':r:' .. room
  local v = redis.call('HGET', r .. ':m', conn)
  if not v then return nil end
  local json = string.sub(v, string.find(v, '\n') + 1)
  local id = cjson.decode(json)['id']
  redis.call('HDEL', r .. ':m', conn)
  redis.call('HDEL', r .. ':p', id)
  local c = prefix .. ':c:' .. conn
  redis.call('SREM', c, room)
  if redis.call('SCARD', c) == 0 then
    local node = string.sub(conn, 1, string.find(conn, '/') - 1)
    redis.call('SREM', prefix .. ':n:' .. node .. ':c', conn)
  end
  local left = redis.call('HLEN', r .. ':m')
  -- The room's history goes with the room: no message outlives it.
  if left == 0 then
    forget_room(prefix, r)
    redis.call('DEL', r, r .. ':m', r .. ':p', r .. ':h')
  end
  return {id, left}
end
