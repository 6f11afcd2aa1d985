-- Takes a seat. KEYS: room, members, peers, history, connrooms, nodeconns,
-- nodes, node heartbeat. ARGV: conn, room name, member json, mode, pw hash,
-- max peers, node, heartbeat ttl ms, sfu allowed ('1' or '0'), rooms per conn.
-- History entries are returned as stored ("bytes\tip\tjson").
-- This node is alive (it runs this): a lapsed heartbeat must not get the
-- new member swept before the next refresh.
redis.call('SET', KEYS[8], 1, 'PX', ARGV[8], 'NX')
local mine = redis.call('HGET', KEYS[2], ARGV[1])
if mine then
  return {'again', redis.call('HGET', KEYS[1], 'mode'), mine,
          redis.call('HVALS', KEYS[2]), redis.call('LRANGE', KEYS[4], 0, -1)}
end
local mode = ARGV[4]
if redis.call('EXISTS', KEYS[1]) == 1 then
  local pw = redis.call('HGET', KEYS[1], 'pw') or ''
  if pw ~= '' and pw ~= ARGV[5] then return {'unauthorized'} end
  if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[6]) then return {'full'} end
  mode = redis.call('HGET', KEYS[1], 'mode')
elseif mode == 'sfu' and ARGV[9] ~= '1' then
  return {'mode'}
end
if redis.call('SCARD', KEYS[5]) >= tonumber(ARGV[10]) then return {'rooms'} end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'mode', mode, 'pw', ARGV[5], 'seq', 0, 'hb', 0)
end
local n = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local me = n .. '\n' .. ARGV[3]
local others = redis.call('HVALS', KEYS[2])
redis.call('HSET', KEYS[2], ARGV[1], me)
redis.call('HSET', KEYS[3], cjson.decode(ARGV[3])['id'], ARGV[1])
redis.call('SADD', KEYS[5], ARGV[2])
redis.call('SADD', KEYS[6], ARGV[1])
redis.call('SADD', KEYS[7], ARGV[7])
return {'ok', mode, me, others, redis.call('LRANGE', KEYS[4], 0, -1)}
