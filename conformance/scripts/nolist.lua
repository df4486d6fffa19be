-- conformance: a script without dns_list (AXFR cannot work) and an almost empty dns_lookup.

function dns_lookup(qtype, qname, domain_id, ctx)
  return {}
end
