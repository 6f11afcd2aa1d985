-- KEYS: members; ARGV: conn, member value. Replaces the member only if it
-- is still there (a leave in between wins); returns the room's size, 0
-- when it was not a member.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return redis.call('HLEN', KEYS[1])
