-- conformance: dns_init and dns_deinit, and state that lives as long as the Lua state.

local questions = 0

function dns_init()
  greeting = "set by dns_init"
  pdnslog("dns_init ran", pdns.loglevels.Warning)
end

function dns_deinit()
  pdnslog("dns_deinit ran after " .. questions .. " questions", pdns.loglevels.Error)
end

function dns_lookup(qtype, qname, domain_id, ctx)
  questions = questions + 1
  if qname:getRawLabels()[1] == "fail" then
    error("failing question " .. questions)
  end
  return {
    { name = qname, type = "TXT", ttl = 0, content = greeting .. ", question " .. questions },
  }
end
