-- conformance: hooks that fail. The first label of the qname (or the AXFR zone) picks how.
-- Line numbers matter: the transcripts expect the error positions below.

local function check_positive(n)
  if n <= 0 then
    error("not positive: " .. n)
  end
  return n
end

function dns_lookup(qtype, qname, domain_id, ctx)
  local how = qname:getRawLabels()[1]
  if how == "boom" then
    error("boom")
  elseif how == "nested" then
    check_positive(-1)
  elseif how == "index" then
    local missing = nil
    return missing.rows
  elseif how == "number" then
    error(42)
  elseif how == "level0" then
    error("no position", 0)
  end
  return {
    { name = qname, type = "SOA", ttl = 3600, domain_id = 3,
      content = "ns1.example.net. hostmaster.example.net. 1 3600 600 604800 300" },
  }
end

function dns_list(target, domain_id)
  local how = target:getRawLabels()[1]
  if how == "boom" then
    error("list boom")
  elseif how == "yes" then
    return true
  elseif how == "bad" then
    return { { name = "x.example.net", type = "A", ttl = 1 } }
  end
  return false
end
