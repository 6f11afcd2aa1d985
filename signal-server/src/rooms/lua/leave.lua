-- ARGV: prefix, room, conn
return remove(ARGV[1], ARGV[2], ARGV[3])
