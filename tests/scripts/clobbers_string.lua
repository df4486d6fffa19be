-- A script that assigns over every field of the string library, and over the string metatable's
-- __index, once its hooks are defined: lua2pipe's own Lua must keep rendering MX and SRV rows,
-- parsing addresses and names, escaping keys and reporting errors (test_fidelity.py). Native
-- lua2 is unaffected: pdns does all of that in C++.

local rows = {
  { name = "c.example.org", type = "MX", content = "10 mx.example.org." },
  { name = "c.example.org", type = "SRV", content = "0 5 5060 sip.example.org." },
  { name = "c.example.org", type = "TXT", content = "tab\there" },
  { name = "c.example.org", type = "CNAME", content = "a\1b.example." },
  { name = "c.example.org", type = "A", content = "192.0.2.1", ["odd\nkey"] = 1 },
}

function dns_lookup(_, qname)
  local labels = qname:getRawLabels()
  if labels[1] == "boom" then error("boom") end
  if labels[1] == "addresses" then
    return {
      { name = qname, type = "TXT", content = newCA("192.0.2.7"):toString() },
      { name = qname, type = "TXT", content = newCA("[2001:db8::1]:53"):toStringWithPort() },
      { name = qname, type = "TXT", content = newNetmask("10.0.0.0/8"):toString() },
      { name = newDN("Mixed.Example.ORG"), type = "TXT", content = newQType("aaaa"):getName() },
    }
  end
  return rows
end

function dns_get_domaininfo(zone)
  return { id = 7, kind = "master", serial = 3 }
end

local clobber = function() return nil end
for name in next, string do
  string[name] = clobber
end
getmetatable("").__index = {}
