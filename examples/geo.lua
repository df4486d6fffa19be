-- geo.lua: a small PowerDNS lua2 backend script that serves one zone, example.org, and answers
-- www.example.org differently depending on where the question comes from.
--
-- It runs unchanged in both ways of hosting a lua2 script:
--
--   native, inside pdns_server           launch=lua2
--                                        lua2-filename=/abs/path/geo.lua
--                                        lua2-api=2
--
--   out of process, through lua2pipe     launch=pipe
--                                        pipe-command=/abs/path/lua2pipe /abs/path/geo.lua
--                                        pipe-abi-version=5
--
-- Either way, set zone-cache-refresh-interval=0: this script does not implement
-- dns_get_all_domains, so with the zone cache on pdns would know no zones and REFUSE everything.
-- pdns finds the zone by asking dns_lookup for SOA records instead (the "zone walk", below).
--
-- Try it:  make run   (then: dig @127.0.0.1 -p 5300 www.example.org A)
--
-- What pdns calls, and when:
--   dns_init()                                once per backend instance, after this file has run
--   dns_lookup(qtype, qname, domain_id, ctx)  for every lookup; must return an array of rows
--   dns_list(zone, domain_id)                 for AXFR; rows, or false for "not mine"
--   stats(arg)                                `pdnsutil backend-cmd lua2 'stats'` (or `pipe`)
--
-- pdns runs one copy of this script per backend instance (one per distributor thread, plus a few
-- more), each in its own Lua state. Globals are therefore per instance, never shared.

-- ------------------------------------------------------------------------------------------------
-- Configuration

local ZONE_NAME = "example.org."
local ZONE_ID = 1 -- any integer; pdns passes it back to us as domain_id in later lookups
local DEFAULT_TTL = 3600
local DYNAMIC_TTL = 60 -- answers that depend on the client should not be cached for long

-- Where to send clients asking for www.example.org. The most specific matching network wins
-- (a NetmaskGroup matches by longest prefix); clients that match no pool get WWW_DEFAULT.
-- Documentation addresses (RFC 5737) stand in for real ones.
local WWW_POOLS = {
  { name = "lab", networks = { "127.0.0.0/24", "10.0.0.0/8" }, address = "192.0.2.10" },
  { name = "europe", networks = { "127.0.1.0/24", "198.51.100.0/24" }, address = "192.0.2.20" },
}
local WWW_DEFAULT = { name = "default", address = "192.0.2.30" }

-- The static part of the zone, in the order an AXFR lists it. Names are relative to the zone
-- ("@" is the apex); contents are in zone-file form. MX and SRV contents start with the
-- priority. TXT contents carry their own quotes.
local STATIC_RECORDS = {
  { "@", "SOA", "ns1.example.org. hostmaster.example.org. 2024010101 10800 3600 604800 300" },
  { "@", "NS", "ns1.example.org." },
  { "@", "NS", "ns2.example.org." },
  { "@", "MX", "10 mail.example.org." },
  { "@", "MX", "20 mail2.example.org." },
  { "@", "TXT", '"v=spf1 mx -all"' },
  { "ns1", "A", "192.0.2.1" },
  { "ns1", "AAAA", "2001:db8::1" },
  { "ns2", "A", "192.0.2.2" },
  { "ns2", "AAAA", "2001:db8::2" },
  { "www", "AAAA", "2001:db8::80" }, -- www's A record is computed per client, see www_address()
  { "mail", "A", "192.0.2.25" },
  { "mail2", "A", "192.0.2.26" },
  { "sip", "A", "192.0.2.60" },
  { "_sip._tcp", "SRV", "10 60 5060 sip.example.org." }, -- priority weight port target
  { "ftp", "CNAME", "www.example.org." },
  { "*.apps", "A", "192.0.2.50" }, -- any name under apps.example.org that is not listed
  { "*.apps", "TXT", '"served by the wildcard"' },
  -- A delegation: sub.example.org is served by other name servers. The NS rows at the cut and
  -- the glue addresses below it are not authoritative data of this zone, hence auth = false.
  { "sub", "NS", "ns1.sub.example.org.", auth = false },
  { "sub", "NS", "ns2.sub.example.org.", auth = false },
  { "ns1.sub", "A", "192.0.2.53", auth = false },
  { "ns2.sub", "AAAA", "2001:db8::53", auth = false },
}

-- ------------------------------------------------------------------------------------------------
-- State, built by dns_init

local records = {} -- lower-case absolute name ("www.example.org.") -> array of {code=, row=}
local axfr_order = {} -- every static row, in STATIC_RECORDS order
local www_key -- records key of www.example.org.
local www_groups = {} -- { {nmg = NetmaskGroup, pool = pool}, ... }
local counters = { lookups = 0, lists = 0 } -- per instance, reported by stats()

-- Names are compared case-insensitively: pdns hands us the query name with the client's case.
local function key_of(name)
  return string.lower(tostring(name))
end

local function absolute(relative)
  if relative == "@" then
    return ZONE_NAME
  end
  return relative .. "." .. ZONE_NAME
end

-- One row in the shape dns_lookup must return. Only name, type and content are required; pdns
-- defaults ttl to 0 (not to default-ttl!), domain_id to -1 and auth to true.
local function row(name, rtype, content, ttl, auth)
  return {
    name = name, -- a string is fine; a DNSName (newDN) works too
    type = rtype, -- a mnemonic like "A"; a QType or a type code also work
    content = content, -- always a string
    ttl = ttl,
    domain_id = ZONE_ID,
    auth = auth,
  }
end

function dns_init()
  records, axfr_order = {}, {}
  for _, spec in ipairs(STATIC_RECORDS) do
    local name = absolute(spec[1])
    local r = row(name, spec[2], spec[3], DEFAULT_TTL, spec.auth ~= false)
    local key = key_of(newDN(name)) -- newDN normalises the text ("a.B" -> "a.B.")
    records[key] = records[key] or {}
    -- Keep the type code beside the row, not in it: pdns warns about keys it does not know.
    table.insert(records[key], { code = newQType(spec[2]):getCode(), row = r })
    table.insert(axfr_order, r)
  end
  -- Make sure www exists even if it had no static rows: its A record is added per lookup.
  www_key = key_of(newDN(absolute("www")))
  records[www_key] = records[www_key] or {}

  www_groups = {}
  for _, pool in ipairs(WWW_POOLS) do
    table.insert(www_groups, { nmg = newNMG(pool.networks), pool = pool })
  end
  pdnslog("geo.lua: loaded " .. #axfr_order .. " records for " .. ZONE_NAME, pdns.loglevels.Info)
end

-- ------------------------------------------------------------------------------------------------
-- The dynamic part

-- The client's address as a ComboAddress, or nil when pdns has no client: ctx is an empty table
-- for the zone walk, AXFR, pdnsutil and other internal lookups.
--
-- ctx.real_source_address is a netmask string: "127.0.0.1/32" normally, or the client subnet
-- ("198.51.100.0/24") when a resolver sends EDNS Client Subnet and pdns runs with
-- edns-subnet-processing=yes. ctx.source_address is the plain address of whoever sent the packet.
local function client_address(ctx)
  if ctx.real_source_address then
    local ok, mask = pcall(newNetmask, ctx.real_source_address)
    if ok then
      return mask:getNetwork() -- the subnet's first address: enough to pick a pool by /24
    end
  end
  if ctx.source_address then
    local ok, address = pcall(newCA, ctx.source_address)
    if ok then
      return address
    end
  end
  return nil
end

local function www_pool(ctx)
  local address = client_address(ctx)
  if address then
    for _, group in ipairs(www_groups) do
      if group.nmg:match(address) then
        return group.pool
      end
    end
  end
  return WWW_DEFAULT
end

local function www_address(ctx)
  local pool = www_pool(ctx)
  counters[pool.name] = (counters[pool.name] or 0) + 1
  local r = row(absolute("www"), "A", pool.address, DYNAMIC_TTL, true)
  -- scopeMask tells ECS-aware resolvers how much of the client subnet the answer depended on.
  -- (The lua2 documentation calls it scope_mask, but pdns reads the key scopeMask.)
  if ctx.real_source_address then
    r.scopeMask = 24
  end
  return r
end

-- ------------------------------------------------------------------------------------------------
-- Hooks

-- qtype is a QType, qname a DNSName. Most lookups ask for ANY; pdns picks the types it needs.
-- Returning rows of other types is harmless for ordinary lookups, but NOT for the zone walk:
-- pdns finds the zone of a name by asking for its SOA with domain_id -1 (www.example.org.,
-- then example.org., then org., ...), and any non-SOA row in those answers is an error. So
-- always filter by type unless the question is ANY.
function dns_lookup(qtype, qname, domain_id, ctx)
  counters.lookups = counters.lookups + 1
  local key = key_of(qname)
  local rows = records[key]
  if rows == nil then
    return {} -- not a name of ours: no rows, never nil
  end

  local wanted = qtype:getCode()
  local answer = {}
  for _, entry in ipairs(rows) do
    if wanted == pdns.ANY or entry.code == wanted then
      table.insert(answer, entry.row)
    end
  end
  if key == www_key and (wanted == pdns.ANY or wanted == pdns.A) then
    table.insert(answer, www_address(ctx))
  end
  return answer
end

-- AXFR. pdns asks for the zone's SOA first, then calls this; it sends the SOA at both ends
-- of the transfer itself. www's A record is listed as a client with no address would get it.
function dns_list(target, domain_id)
  if key_of(target) ~= key_of(newDN(ZONE_NAME)) then
    return false
  end
  counters.lists = counters.lists + 1
  local all = {}
  for i, r in ipairs(axfr_order) do
    all[i] = r
  end
  table.insert(all, www_address({}))
  return all
end

-- A backend command: `pdnsutil --config-dir=DIR backend-cmd lua2 'stats'` (or `pipe` for
-- lua2pipe). Any global function can be called this way with one string argument (the rest of
-- the command line, "" when there is none) and must return a string. Note that pdnsutil starts
-- its own instances of the backend, so these counters are those of a fresh instance, not of the
-- running server's.
function stats(arg)
  local names = { "lookups", "lists" }
  for _, pool in ipairs(WWW_POOLS) do
    table.insert(names, pool.name)
  end
  table.insert(names, WWW_DEFAULT.name)
  if arg ~= "" then
    names = { arg }
  end
  local lines = {}
  for _, name in ipairs(names) do
    table.insert(lines, name .. "=" .. tostring(counters[name] or 0))
  end
  return table.concat(lines, "\n")
end
