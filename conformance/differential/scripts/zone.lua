-- differential: a zone shaped like production lua2 scripts (example.net, zone id 7).
-- Static records in a table, a few answers that depend on the client (ctx), delegations with
-- glue (auth=false below the cut), wildcards, CNAME chains, empty non-terminals, answers too big
-- for 512-byte UDP, names that need escaping. Deterministic: pdns runs several copies.

local ZONE, ZONE_ID = "example.net", 7

-- owner (lower case, no trailing dot) -> { {type, ttl, content[, auth]} ... }
local R = {}
local ORDER = {}
local function add(owner, rtype, ttl, content, auth)
  if not R[owner] then R[owner] = {}; ORDER[#ORDER + 1] = owner end
  local list = R[owner]
  list[#list + 1] = { rtype, ttl, content, auth }
end

add("example.net", "SOA", 3600, "ns1.example.net. hostmaster.example.net. 2024050101 7200 900 1209600 600")
add("example.net", "NS", 3600, "ns1.example.net.")
add("example.net", "NS", 3600, "ns2.example.net.")
add("example.net", "MX", 1800, "10 mail.example.net.")
add("example.net", "MX", 1800, "20 mx.example.org.")
add("example.net", "TXT", 300, "v=spf1 mx -all")                       -- auto-quoted by pdns
add("example.net", "TXT", 300, '"two" "strings; with\\009tab"')
add("ns1.example.net", "A", 3600, "192.0.2.1")
add("ns1.example.net", "AAAA", 3600, "2001:db8::1")
add("ns2.example.net", "A", 3600, "192.0.2.2")
add("mail.example.net", "A", 3600, "192.0.2.25")
add("mail.example.net", "AAAA", 3600, "2001:db8::25")
add("www.example.net", "AAAA", 600, "2001:db8::80")
-- CNAME chains: in zone, to a wildcard, out of zone, and a loop
add("alias1.example.net", "CNAME", 300, "alias2.example.net.")
add("alias2.example.net", "CNAME", 300, "www.example.net.")
add("towild.example.net", "CNAME", 300, "x.wild.example.net.")
add("ext.example.net", "CNAME", 300, "www.example.org.")
add("loop1.example.net", "CNAME", 300, "loop2.example.net.")
add("loop2.example.net", "CNAME", 300, "loop1.example.net.")
add("tosub.example.net", "CNAME", 300, "host.sub.example.net.")
-- wildcards, one with an explicit name below it, one CNAME wildcard
add("*.wild.example.net", "A", 60, "192.0.2.99")
add("*.wild.example.net", "TXT", 60, "from the wildcard")
add("exists.wild.example.net", "A", 60, "192.0.2.98")
add("*.cw.example.net", "CNAME", 60, "mail.example.net.")
-- delegations: glue below the cut (auth=false), and one whose servers are in the parent zone
add("sub.example.net", "NS", 86400, "ns1.sub.example.net.", false)
add("sub.example.net", "NS", 86400, "ns.example.org.", false)
add("sub.example.net", "DS", 86400, "12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
add("ns1.sub.example.net", "A", 86400, "192.0.2.53", false)
add("ns1.sub.example.net", "AAAA", 86400, "2001:db8::53", false)
add("deleg2.example.net", "NS", 86400, "ns2.example.net.", false)
-- SRV with additional processing
add("_sip._tcp.example.net", "SRV", 300, "10 60 5060 mail.example.net.")
add("_sip._tcp.example.net", "SRV", 300, "20 0 5060 sip.example.org.")
-- empty non-terminals: ent.example.net is answered with an ENT row (as a rectified database
-- would); noent.example.net is not (the script knows nothing of it)
add("a.b.ent.example.net", "A", 300, "192.0.2.77")
add("deep.noent.example.net", "A", 300, "192.0.2.78")
-- big answers (more than 512 bytes: TC over UDP without EDNS)
for i = 1, 40 do add("many.example.net", "A", 300, "198.51.100." .. i) end
for i = 1, 12 do
  add("big.example.net", "TXT", 300, '"' .. string.rep(string.char(96 + i), 60) .. '" "part ' .. i .. '"')
end
-- names that need escaping (keys are the presentation form, as toStringNoDot gives it)
add("sp\\032ace.example.net", "A", 300, "192.0.2.32")
add("dot\\.in\\.label.example.net", "TXT", 300, "plain")
add("mixed.example.net", "A", 300, "192.0.2.33")
add("types.example.net", "CAA", 300, '0 issue "ca.example.org"')
add("types.example.net", "SSHFP", 300, "1 1 0123456789abcdef0123456789abcdef01234567")
add("types.example.net", "NAPTR", 300, '100 10 "u" "E2U+sip" "!^.*$!sip:info@example.net!" .')
add("types.example.net", "PTR", 300, "www.example.net.")
add("types.example.net", "LOC", 300, "52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m")
add("types.example.net", "HINFO", 300, '"PC" "Linux"')
add("types.example.net", "TYPE65280", 300, "\\# 3 010203")

local ENT = { ["b.ent.example.net"] = true, ["ent.example.net"] = true }

-- ctx-dependent answers for www: the client's address, or the client subnet
local function inside(address, prefix)
  return address ~= nil and address:sub(1, #prefix) == prefix
end

local function www_rows(name, code, ctx)
  local rows = {}
  local src, real = ctx.source_address, ctx.real_source_address
  if code == pdns.A or code == pdns.ANY then
    local content, scope = "192.0.2.30", nil
    if real and newNetmask("10.0.0.0/8"):match(tostring(newNetmask(real):getNetwork())) then
      content, scope = "192.0.2.10", 16
    elseif inside(src, "127.0.0.2") then
      content = "192.0.2.20"
    elseif src == nil then
      content = "192.0.2.40" -- no packet (zone walk, AXFR)
    end
    rows[#rows + 1] = { name = name, type = "A", ttl = 60, content = content, domain_id = ZONE_ID, scopeMask = scope }
  end
  if code == pdns.TXT or code == pdns.ANY then
    rows[#rows + 1] = {
      name = name, type = "TXT", ttl = 60, domain_id = ZONE_ID,
      content = '"src=' .. tostring(src) .. '" "real=' .. tostring(real) .. '"',
    }
  end
  return rows
end

local function rows_for(owner, name, code, rows)
  for _, r in ipairs(R[owner] or {}) do
    local rtype = newQType(r[1])
    if code == pdns.ANY or code == rtype:getCode() then
      local row = { name = name, type = rtype, ttl = r[2], content = r[3], domain_id = ZONE_ID }
      if r[4] == false then row.auth = false end
      rows[#rows + 1] = row
    end
  end
  return rows
end

function dns_lookup(qtype, qname, domain_id, ctx)
  if domain_id ~= -1 and domain_id ~= ZONE_ID then return {} end
  if not qname:isPartOf(newDN(ZONE)) then return {} end
  local owner = qname:toStringNoDot():lower()
  local code = qtype:getCode()
  if owner == "www.example.net" then
    local rows = www_rows(qname, code, ctx)
    return rows_for(owner, qname, code, rows)
  end
  if ENT[owner] and code == pdns.ANY then
    return { { name = qname, type = 0, ttl = 300, domain_id = ZONE_ID } }
  end
  if owner == "mixed.example.net" then
    -- this owner is written with its own case, not the question's
    local rows = rows_for(owner, newDN("MiXeD.Example.NET"), code, {})
    return rows
  end
  return rows_for(owner, qname, code, {})
end

function dns_list(target, domain_id)
  if not target:equal(ZONE) then return false end
  local rows = {}
  for _, owner in ipairs(ORDER) do
    rows_for(owner, newDN(owner), pdns.ANY, rows)
  end
  for _, owner in ipairs({ "ent.example.net", "b.ent.example.net" }) do
    rows[#rows + 1] = { name = newDN(owner), type = 0, ttl = 300, domain_id = ZONE_ID }
  end
  for _, r in ipairs(www_rows(newDN("www.example.net"), pdns.ANY, {})) do rows[#rows + 1] = r end
  return rows
end
