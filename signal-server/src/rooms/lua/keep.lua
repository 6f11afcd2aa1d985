-- Keeps an event for a held seat. ARGV: prefix, room, peer, parcel, max
-- events, max bytes, ttl ms. Returns {'kept'}, {'live', conn} when the
-- seat is not held (deliver there), or {'gone'}.
local r = ARGV[1] .. ':r:' .. ARGV[2]
local c = redis.call('HGET', r .. ':p', ARGV[3])
if not c then return {'gone'} end
if string.sub(c, 1, 1) ~= '!' then return {'live', c} end
local k = r .. ':k:' .. ARGV[3]
local parcel = ARGV[4]
redis.call('RPUSH', k, parcel)
local bytes = redis.call('INCRBY', k .. ':b', #parcel)
while redis.call('LLEN', k) > tonumber(ARGV[5]) or bytes > tonumber(ARGV[6]) do
  local old = redis.call('LPOP', k)
  if not old then break end
  bytes = redis.call('DECRBY', k .. ':b', #old)
end
redis.call('PEXPIRE', k, ARGV[7])
redis.call('PEXPIRE', k .. ':b', ARGV[7])
return {'kept'}
