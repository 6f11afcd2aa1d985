-- The host of a room: its member with the lowest join number (the
-- creator, then whoever is there longest). Returns its connection and value.
local function host_of(members)
  local all = redis.call('HGETALL', members)
  local best, low = nil, nil
  for i = 1, #all, 2 do
    local v = all[i + 1]
    local n = tonumber(string.sub(v, 1, string.find(v, '\n', 1, true) - 1))
    if not low or n < low then best, low = i, n end
  end
  if best then return all[best], all[best + 1] end
  return nil, nil
end

-- Removes one member; shared by LEAVE, SWEEP, EXPIRE and KICK. Returns
-- {peer id, members left, the new host's id when the host left, else '',
-- the connections of the members left, comma-separated}.
local function remove(prefix, room, conn)
  local r = prefix .. ':r:' .. room
  local v = redis.call('HGET', r .. ':m', conn)
  if not v then return nil end
  local was_host = host_of(r .. ':m') == conn
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
  local host, others = '', ''
  -- The room's history goes with the room: no message outlives it.
  if left == 0 then
    forget_room(prefix, r)
    local owner = redis.call('HGET', r, 'sfu')
    if owner and owner ~= '' then redis.call('SREM', prefix .. ':sfu:' .. owner .. ':rooms', room) end
    redis.call('DEL', r, r .. ':m', r .. ':p', r .. ':h')
  elseif was_host then
    local _, hv = host_of(r .. ':m')
    host = cjson.decode(string.sub(hv, string.find(hv, '\n', 1, true) + 1))['id']
  end
  if left > 0 then others = table.concat(redis.call('HKEYS', r .. ':m'), ',') end
  return {id, left, host, others}
end
