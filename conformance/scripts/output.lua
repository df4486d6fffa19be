-- conformance: everything a script can write or read on the standard streams. None of it may
-- reach the protocol: stdout goes to the log, stdin is empty.

function dns_lookup(qtype, qname, domain_id, ctx)
  print("print from dns_lookup", qname:toString())
  io.write("io.write from dns_lookup\n")
  io.stdout:write("io.stdout:write from dns_lookup\n")
  io.stdout:flush()
  local line = io.read("*l")
  pdnslog("pdnslog from dns_lookup", pdns.loglevels.Error)
  return { { name = qname, type = "TXT", ttl = 0, content = "io.read gave " .. tostring(line) } }
end
