-- conformance: one small zone, example.org (zone id 1), answered the way most lua2 scripts
-- answer: a table of records, the SOA for the zone walk, dns_list for AXFR, and a few
-- functions for backend-cmd (CMD).

local ZONE_ID = 1

-- owners in the order dns_list gives them
local OWNERS = {
  "example.org", "www.example.org", "mail.example.org", "ns1.example.org", "ftp.example.org",
  "_sip._udp.example.org", "*.wild.example.org",
}

local RECORDS = {
  ["example.org"] = {
    { "SOA", 3600, "ns1.example.org. hostmaster.example.org. 2024010101 3600 600 604800 300" },
    { "NS", 3600, "ns1.example.org." },
    { "MX", 300, "10 mail.example.org." },
    { "TXT", 300, "v=spf1 -all" },
  },
  ["www.example.org"] = { { "A", 300, "192.0.2.1" }, { "AAAA", 300, "2001:db8::1" } },
  ["mail.example.org"] = { { "A", 300, "192.0.2.25" } },
  ["ns1.example.org"] = { { "A", 3600, "192.0.2.53" } },
  ["ftp.example.org"] = { { "CNAME", 300, "www.example.org." } },
  ["_sip._udp.example.org"] = { { "SRV", 300, "10 20 5060 sip.example.org." } },
  ["*.wild.example.org"] = { { "A", 60, "192.0.2.99" } },
}

local function add_rows(result, owner, name, code)
  for _, record in ipairs(RECORDS[owner] or {}) do
    local rtype = newQType(record[1])
    if code == pdns.ANY or code == rtype:getCode() then
      result[#result + 1] = {
        name = name, type = rtype, ttl = record[2], content = record[3], domain_id = ZONE_ID,
      }
    end
  end
end

function dns_lookup(qtype, qname, domain_id, ctx)
  local result = {}
  if domain_id ~= -1 and domain_id ~= ZONE_ID then return result end
  -- the owner keeps the question's case, as it does in most scripts
  add_rows(result, qname:toStringNoDot():lower(), qname, qtype:getCode())
  return result
end

function dns_list(target, domain_id)
  if not target:equal("example.org") then return false end
  local result = {}
  for _, owner in ipairs(OWNERS) do add_rows(result, owner, newDN(owner), pdns.ANY) end
  return result
end

-- backend-cmd functions
function echo(text) return text end
function count(text) return #text end
function lines() return "first\nEND\nlast\n" end
function nothing() end
function broken() error("cmd went wrong") end
