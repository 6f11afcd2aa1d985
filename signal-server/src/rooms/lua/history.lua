-- Kept chat history (shared by chat, leave and sweep). A history entry is
-- "<bytes>\t<ip or ->\t<message json>". What an address wrote is counted
-- under P:ip:{ip}: ':b' bytes, ':k' messages still kept, ':o' where they
-- went ("room\nid", oldest first; entries of messages already gone are
-- skipped when met, and the oldest trimmed when they pile up).
local function entry_parts(e)
  local t1 = string.find(e, '\t', 1, true)
  local t2 = string.find(e, '\t', t1 + 1, true)
  return tonumber(string.sub(e, 1, t1 - 1)), string.sub(e, t1 + 1, t2 - 1)
end

-- A kept message left the history: off its author's count.
local function forget(prefix, e)
  local bytes, ip = entry_parts(e)
  if ip == '-' then return bytes end
  local a = prefix .. ':ip:' .. ip
  redis.call('DECRBY', a .. ':b', bytes)
  if redis.call('DECR', a .. ':k') <= 0 then
    redis.call('DEL', a .. ':b', a .. ':k', a .. ':o')
  end
  return bytes
end

-- A room goes: its whole history leaves.
local function forget_room(prefix, r)
  for _, e in ipairs(redis.call('LRANGE', r .. ':h', 0, -1)) do forget(prefix, e) end
end
