-- A script that assigns over the standard library once its hooks are defined: lua2pipe's own
-- Lua must not depend on those globals (test_robustness.py).

local fail = error

function dns_lookup(_, qname)
  if qname:toString() == "boom.example.org." then fail("boom") end
  return { { name = qname, type = "TXT", content = "still served", ttl = 60 } }
end

function dns_get_all_domain_metadata()
  return { ["SOA-EDIT"] = { "INCEPTION-INCREMENT" }, ["ALSO-NOTIFY"] = { "192.0.2.2", "192.0.2.1" } }
end

function answer() return 42 end

table, string, load, loadstring, pcall, xpcall, tostring, type, pairs, ipairs, error, debug,
  collectgarbage, math, require, setmetatable, getmetatable =
  nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil
