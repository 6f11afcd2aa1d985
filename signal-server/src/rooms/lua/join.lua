-- Takes a seat. KEYS: room, members, peers, history, connrooms, nodeconns,
-- nodes, node heartbeat. ARGV: conn, room name, member json, mode, pw hash,
-- max peers, node, heartbeat ttl ms, sfu allowed ('1' or '0'), rooms per conn,
-- resume token ('' for none), new token, prefix, restoring ('1': putting
-- back a membership Redis lost).
-- History entries are returned as stored ("bytes\tip\tjson"). Returns
-- {outcome, mode, me, members, history, kept (a resume), replaced (a
-- resume), locked ('1' or '0'), SFU epoch ('0' in a mesh room)}, or
-- {refusal}. A new SFU room is given to the least-loaded live SFU node
-- (this one on a tie); with none alive it is refused ('nosfu').
-- This node is alive (it runs this): a lapsed heartbeat must not get the
-- new member swept before the next refresh.
redis.call('SET', KEYS[8], 1, 'PX', ARGV[8], 'NX')
local mine = redis.call('HGET', KEYS[2], ARGV[1])
if mine then
  return {'again', redis.call('HGET', KEYS[1], 'mode'), mine,
          redis.call('HVALS', KEYS[2]), redis.call('LRANGE', KEYS[4], 0, -1), {}, '',
          redis.call('HGET', KEYS[1], 'locked') or '0', redis.call('HGET', KEYS[1], 'se') or '0'}
end
local mode = ARGV[4]
-- A resume: the seat whose token matches, held or still live, moves to
-- this connection with a new token and gives up its kept events.
if ARGV[11] ~= '' and redis.call('EXISTS', KEYS[1]) == 1 then
  local all = redis.call('HGETALL', KEYS[2])
  for i = 1, #all, 2 do
    local v = all[i + 1]
    local nl = string.find(v, '\n', 1, true)
    local m = cjson.decode(string.sub(v, nl + 1))
    if m['tok'] == ARGV[11] then
      if redis.call('SCARD', KEYS[5]) >= tonumber(ARGV[10]) then return {'rooms'} end
      local old, prefix = all[i], ARGV[13]
      m['conn'] = ARGV[1]
      m['tok'] = ARGV[12]
      local me = string.sub(v, 1, nl) .. cjson.encode(m)
      redis.call('HDEL', KEYS[2], old)
      redis.call('HSET', KEYS[2], ARGV[1], me)
      redis.call('HSET', KEYS[3], m['id'], ARGV[1])
      local replaced = ''
      if redis.call('ZREM', prefix .. ':held', ARGV[2] .. '\n' .. old) == 0 then
        replaced = old
        local c = prefix .. ':c:' .. old
        redis.call('SREM', c, ARGV[2])
        if redis.call('SCARD', c) == 0 then
          local node = string.sub(old, 1, string.find(old, '/') - 1)
          redis.call('SREM', prefix .. ':n:' .. node .. ':c', old)
        end
      end
      local k = KEYS[1] .. ':k:' .. m['id']
      local kept = redis.call('LRANGE', k, 0, -1)
      redis.call('DEL', k, k .. ':b')
      redis.call('SADD', KEYS[5], ARGV[2])
      redis.call('SADD', KEYS[6], ARGV[1])
      redis.call('SADD', KEYS[7], ARGV[7])
      return {'resumed', redis.call('HGET', KEYS[1], 'mode'), me,
              redis.call('HVALS', KEYS[2]), redis.call('LRANGE', KEYS[4], 0, -1), kept, replaced,
              redis.call('HGET', KEYS[1], 'locked') or '0', redis.call('HGET', KEYS[1], 'se') or '0'}
    end
  end
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'locked') == '1' then return {'locked'} end
  local pw = redis.call('HGET', KEYS[1], 'pw') or ''
  if pw ~= '' and pw ~= ARGV[5] then return {'unauthorized'} end
  if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[6]) then return {'full'} end
  mode = redis.call('HGET', KEYS[1], 'mode')
elseif mode == 'sfu' and ARGV[9] ~= '1' then
  return {'mode'}
end
if redis.call('SCARD', KEYS[5]) >= tonumber(ARGV[10]) then return {'rooms'} end
if redis.call('EXISTS', KEYS[1]) == 0 then
  local owner = nil
  if mode == 'sfu' then
    owner = sfu_claimant(ARGV[13], ARGV[2])
    -- A room Redis lost, put back by a member's node: its SFU stays where
    -- it runs, which claims it (SFU_ANNOUNCE) if it has not yet; a new
    -- room goes by load.
    if not owner and ARGV[14] ~= '1' then
      owner = sfu_pick(ARGV[13], ARGV[7])
      if not owner then return {'nosfu'} end
    end
  end
  redis.call('HSET', KEYS[1], 'mode', mode, 'pw', ARGV[5], 'seq', 0, 'hb', 0)
  if owner and ARGV[14] == '1' then
    sfu_claim(ARGV[13], KEYS[1], ARGV[2], owner)
  elseif owner then
    sfu_give(ARGV[13], KEYS[1], ARGV[2], owner)
  elseif mode == 'sfu' then
    redis.call('HSET', KEYS[1], 'sfu', '')
  end
end
local n = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local me = n .. '\n' .. ARGV[3]
local others = redis.call('HVALS', KEYS[2])
redis.call('HSET', KEYS[2], ARGV[1], me)
redis.call('HSET', KEYS[3], cjson.decode(ARGV[3])['id'], ARGV[1])
redis.call('SADD', KEYS[5], ARGV[2])
redis.call('SADD', KEYS[6], ARGV[1])
redis.call('SADD', KEYS[7], ARGV[7])
return {'ok', mode, me, others, redis.call('LRANGE', KEYS[4], 0, -1), {}, '', '0',
        redis.call('HGET', KEYS[1], 'se') or '0'}
