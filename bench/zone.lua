-- bench/zone.lua: the lua2 script `make bench` serves, natively (launch=lua2) and through lua2pipe.
--
-- Three small zones of about forty names each (SOA, NS, MX, TXT, A, AAAA, SRV), the kind of
-- table-driven script an operator writes, plus big.test, a generated zone of 100000 records for
-- the AXFR benchmark (built the first time someone asks about it, not at startup).
--
-- bench/zonedata.py runs bench_zones() and bench_big_zone() from this file to build the static
-- tables of the C and plain-Python reference coprocesses, so all of them serve the same records.

local TTL = 3600
local SMALL_ZONES = { { "alpha.test.", 1 }, { "beta.test.", 2 }, { "gamma.test.", 3 } }
local HOSTS_PER_ZONE = 30
local BIG_ZONE, BIG_ID, BIG_RECORDS = "big.test.", 4, 100000

local function add(rows, name, rtype, content, id)
  rows[#rows + 1] = { name = name, type = rtype, content = content, ttl = TTL, domain_id = id }
end

local function apex(rows, zone, id)
  add(rows, zone, "SOA", "ns1." .. zone .. " hostmaster." .. zone .. " 2024010101 10800 3600 604800 300", id)
  add(rows, zone, "NS", "ns1." .. zone, id)
  add(rows, zone, "NS", "ns2." .. zone, id)
end

-- The rows of one small zone; id also varies the addresses.
local function small_zone(zone, id)
  local rows = {}
  apex(rows, zone, id)
  add(rows, zone, "MX", "10 mail." .. zone, id)
  add(rows, zone, "MX", "20 mail2." .. zone, id)
  add(rows, zone, "TXT", '"v=spf1 mx -all"', id)
  add(rows, "_sip._tcp." .. zone, "SRV", "10 60 5060 sip." .. zone, id)
  add(rows, "_xmpp-server._tcp." .. zone, "SRV", "5 0 5269 xmpp." .. zone, id)
  local named = { "ns1", "ns2", "www", "mail", "mail2", "sip", "xmpp" }
  for i, label in ipairs(named) do
    add(rows, label .. "." .. zone, "A", "192.0." .. id .. "." .. i, id)
    add(rows, label .. "." .. zone, "AAAA", "2001:db8:" .. id .. "::" .. i, id)
  end
  for i = 1, HOSTS_PER_ZONE do
    local name = string.format("host%02d.%s", i, zone)
    add(rows, name, "A", "198.51." .. id .. "." .. i, id)
    if i % 3 == 0 then add(rows, name, "AAAA", "2001:db8:" .. id .. ":1::" .. i, id) end
    if i % 5 == 0 then add(rows, name, "TXT", '"host ' .. i .. '"', id) end
  end
  return rows
end

-- Every small zone: { { zone = "alpha.test.", id = 1, rows = {...} }, ... }
function bench_zones()
  local zones = {}
  for _, z in ipairs(SMALL_ZONES) do
    zones[#zones + 1] = { zone = z[1], id = z[2], rows = small_zone(z[1], z[2]) }
  end
  return zones
end

-- big.test: SOA, two NS and A records up to BIG_RECORDS rows in all.
function bench_big_zone()
  local rows = {}
  apex(rows, BIG_ZONE, BIG_ID)
  for i = 1, BIG_RECORDS - #rows do
    local address = string.format("10.%d.%d.%d", math.floor(i / 65536), math.floor(i / 256) % 256, i % 256)
    add(rows, "h" .. i .. "." .. BIG_ZONE, "A", address, BIG_ID)
  end
  return { zone = BIG_ZONE, id = BIG_ID, rows = rows }
end

-- ------------------------------------------------------------------------------------------------
-- Serving

local names = {} -- lower-case absolute name -> array of { code = type code, row = row }
local zone_rows = {} -- lower-case zone name -> its rows, in order (for AXFR)
local big_loaded = false

local function key_of(name)
  return string.lower(name:toString())
end

local function load(zone)
  zone_rows[zone.zone] = zone.rows
  for _, row in ipairs(zone.rows) do
    local entries = names[row.name]
    if entries == nil then
      entries = {}
      names[row.name] = entries
    end
    entries[#entries + 1] = { code = newQType(row.type):getCode(), row = row }
  end
end

local function ensure_big(key)
  if not big_loaded and (key == BIG_ZONE or key:sub(-#BIG_ZONE - 1) == "." .. BIG_ZONE) then
    big_loaded = true
    load(bench_big_zone())
  end
end

function dns_init()
  for _, zone in ipairs(bench_zones()) do
    load(zone)
  end
end

function dns_lookup(qtype, qname, domain_id, ctx)
  local key = key_of(qname)
  local entries = names[key]
  if entries == nil and not big_loaded then
    ensure_big(key)
    entries = names[key]
  end
  if entries == nil then
    return {}
  end
  local wanted = qtype:getCode()
  local answer = {}
  for _, entry in ipairs(entries) do
    if wanted == pdns.ANY or entry.code == wanted then
      answer[#answer + 1] = entry.row
    end
  end
  return answer
end

-- The zone list pdns's zone cache reads (native launch=lua2 and lua2pipe's remote mode); the
-- pipe backend never asks.
function dns_get_all_domains()
  local all = {}
  for _, z in ipairs(SMALL_ZONES) do
    all[newDN(z[1])] = { id = z[2], serial = 2024010101 }
  end
  all[newDN(BIG_ZONE)] = { id = BIG_ID, serial = 2024010101 }
  return all
end

function dns_list(target, domain_id)
  local key = key_of(target)
  ensure_big(key)
  return zone_rows[key] or false
end
