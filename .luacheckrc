-- luacheck (make lint, make test) for lua2pipe's own Lua, which runs on LuaJIT and Lua 5.1-5.4,
-- and for the scripts (examples/, bench/*.lua), which see the lua2 environment and define the
-- hooks as globals.
std = "max"
max_line_length = 120

local lua2_script = {
  allow_defined_top = true,
  ignore = { "131", "212" }, -- hooks are globals pdns reads, with the arguments pdns passes
  read_globals = { "newDN", "newQType", "newCA", "newCAFromRaw", "newCAS", "newNetmask", "newNMG",
                   "newDRR", "newDR", "pdnslog", "pdnsrandom", "resolve", "pdns", "pdns_features" },
}
files["examples"] = lua2_script
files["bench/zone.lua"] = lua2_script
files["bench/large_zone.lua"] = lua2_script
files["bench/hosts.lua"] = lua2_script
