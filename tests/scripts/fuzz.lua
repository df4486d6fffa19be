-- A well-behaved lua2 script for the fuzzers (tests/test_fuzz.py, tests/fuzz/) and the soak
-- (bench/soak.py): every question gets a deterministic answer that echoes it, so an answer
-- shifted by a desync can never pass for the right one.

local ZONE_SOA = "ns.example.org. hostmaster.example.org. 1 10800 3600 604800 300"

function dns_lookup(qtype, qname, domain_id, ctx)
  if qname:toString() == "fail.example.org." then error("asked to fail") end
  if qtype:getCode() == 6 then
    if qname:toString() == "example.org." then
      return { { name = qname, type = "SOA", content = ZONE_SOA, domain_id = 1, ttl = 300 } }
    end
    return {}
  end
  local source = ctx.source_address and newCA(ctx.source_address):toString() or "-"
  local rows = {
    { name = qname, type = "TXT", ttl = 60, domain_id = domain_id,
      content = string.format('"%s %s %d %s"', qname:toString(), qtype:getName(), domain_id, source) },
  }
  if qname:isPartOf(newDN("mx.example.org")) then
    rows[2] = { name = qname, type = "MX", content = "10 mail.example.org.", domain_id = domain_id }
  end
  return rows
end

function dns_list(target, domain_id)
  return {
    { name = target, type = "SOA", content = ZONE_SOA, domain_id = domain_id },
    { name = "www." .. target:toStringNoDot(), type = "A", content = "192.0.2.1", domain_id = domain_id },
  }
end

function echo(text) return "echo:" .. text end
