-- conformance: answers every question with one TXT record describing what dns_lookup got:
-- the qname (toString, label count), the qtype (name, code), the zone id and the ctx table.

function dns_lookup(qtype, qname, domain_id, ctx)
  local keys = {}
  for key in pairs(ctx) do keys[#keys + 1] = key end
  table.sort(keys)
  local parts = {
    "qname=" .. qname:toString(), "labels=" .. qname:countLabels(),
    "qtype=" .. qtype:getName(), "code=" .. qtype:getCode(), "id=" .. domain_id,
    "ctx=" .. #keys,
  }
  for _, key in ipairs(keys) do parts[#parts + 1] = key .. "=" .. tostring(ctx[key]) end
  return { { name = qname, type = "TXT", ttl = 60, content = table.concat(parts, " ") } }
end
