-- conformance: dns_init raises, so the backend cannot be built.

function dns_lookup(qtype, qname, domain_id, ctx)
  return {}
end

function dns_init()
  error("database unreachable")
end
