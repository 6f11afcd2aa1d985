-- ARGV: prefix, conn, grace ms. Holds the lost connection's seats.
return hold_conn(ARGV[1], ARGV[2], tonumber(ARGV[3]))
