-- conformance: a script that forgot dns_lookup.

function dns_list(target, domain_id)
  return false
end
