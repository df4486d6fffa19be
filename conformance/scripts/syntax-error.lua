-- conformance: this script does not compile.

function dns_lookup(qtype, qname, domain_id, ctx)
  return {
end
