-- luacheck (make lint, make test) for lua2pipe's own Lua, which runs on LuaJIT and Lua 5.1-5.4,
-- and for the example script, which sees the lua2 environment and defines the hooks as globals.
std = "max"
max_line_length = 120

files["examples"] = {
  allow_defined_top = true,
  ignore = { "131", "212" }, -- hooks are globals pdns reads, with the arguments pdns passes
  read_globals = { "newDN", "newQType", "newCA", "newCAFromRaw", "newCAS", "newNetmask", "newNMG",
                   "newDRR", "newDR", "pdnslog", "pdnsrandom", "resolve", "pdns", "pdns_features" },
}
