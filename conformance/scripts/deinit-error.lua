-- conformance: dns_deinit raises; lua2pipe logs it and still exits 0.

function dns_lookup(qtype, qname, domain_id, ctx)
  return {}
end

function dns_deinit()
  error("cannot say goodbye")
end
