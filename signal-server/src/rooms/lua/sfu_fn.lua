-- SFU placement, shared by JOIN, SFU_OWNER and SFU_SWEEP. Keys under the
-- prefix: `sfu` (hash: node -> "<peers> <simulcast 0|1>", what each SFU
-- node announced), `sfu:<node>` (its liveness, short TTL), `sfu:<node>:rooms`
-- (set: the rooms it owns).

-- The least-loaded live SFU node (rooms owned + peers connected), `prefer`
-- on a tie; nil when no SFU node is alive.
local function sfu_pick(prefix, prefer)
  local all = redis.call('HGETALL', prefix .. ':sfu')
  local best, low = nil, nil
  for i = 1, #all, 2 do
    local n = all[i]
    if redis.call('EXISTS', prefix .. ':sfu:' .. n) == 1 then
      local peers = tonumber(string.match(all[i + 1], '^%d+')) or 0
      local load = peers + redis.call('SCARD', prefix .. ':sfu:' .. n .. ':rooms')
      if not low or load < low or (load == low and n == prefer) then best, low = n, load end
    end
  end
  return best
end

-- The live SFU node whose set of owned rooms lists `room` already, if any.
local function sfu_claimant(prefix, room)
  for _, n in ipairs(redis.call('HKEYS', prefix .. ':sfu')) do
    if redis.call('EXISTS', prefix .. ':sfu:' .. n) == 1
        and redis.call('SISMEMBER', prefix .. ':sfu:' .. n .. ':rooms', room) == 1 then
      return n
    end
  end
  return nil
end

-- Gives room `room` (key `r`) to `owner` as its next placement; returns the
-- placement's epoch: Redis's clock in ms, and always above the last one, so
-- that epochs never repeat, even after Redis lost its data.
local function sfu_give(prefix, r, room, owner)
  local old = redis.call('HGET', r, 'sfu')
  if old and old ~= '' then redis.call('SREM', prefix .. ':sfu:' .. old .. ':rooms', room) end
  redis.call('SADD', prefix .. ':sfu:' .. owner .. ':rooms', room)
  redis.call('HSET', r, 'sfu', owner)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local epoch = math.max(tonumber(redis.call('HGET', r, 'se') or '0') + 1, now)
  epoch = string.format('%.0f', epoch)
  redis.call('HSET', r, 'se', epoch)
  return epoch
end

-- Names `owner` the owner of room `room` (key `r`) without a new placement:
-- the node that hosts it already (its members are not told).
local function sfu_claim(prefix, r, room, owner)
  redis.call('SADD', prefix .. ':sfu:' .. owner .. ':rooms', room)
  redis.call('HSET', r, 'sfu', owner)
end
