-- conformance: which Lua runs the script.

function dns_lookup(qtype, qname, domain_id, ctx)
  local kind = jit and "with jit" or "without jit"
  return { { name = qname, type = "TXT", ttl = 0, content = _VERSION .. " " .. kind } }
end
