-- A script that assigns over the standard library once its hooks are defined: lua2pipe's own
-- Lua must not depend on those globals (test_robustness.py).

function dns_lookup(_, qname)
  return { { name = qname, type = "TXT", content = "still served", ttl = 60 } }
end

function answer() return 42 end

table, string, load, loadstring, pcall, xpcall, tostring, type, pairs = nil, nil, nil, nil, nil, nil, nil, nil, nil
