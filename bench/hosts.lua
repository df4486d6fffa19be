-- bench/hosts.lua: the zone `make bench` serves for its cached workloads (bench/run.py, section
-- 2c), natively (launch=lua2) and through lua2pipe (pipe and remote mode).
--
-- hosts.test holds 100000 hosts, host0 to host99999, each with an A and an AAAA record computed
-- from its number, as a script that maps names onto a numbering plan does: no table of rows.
-- Every other name in the zone has nothing (NXDOMAIN). The C and plain-Python references
-- (bench/ceiling.c, bench/plain.py) compute the same answers; make bench checks that they agree.

local ZONE, ID, HOSTS, TTL = "hosts.test.", 6, 100000, 3600
local HOST_NAME = "^host(%d+)%.hosts%.test%.$"

local format, lower, match, floor = string.format, string.lower, string.match, math.floor
local ANY = pdns.ANY

local APEX = {
  {
    name = ZONE,
    type = "SOA",
    content = "ns1.hosts.test. hostmaster.hosts.test. 2024010101 10800 3600 604800 300",
    ttl = TTL,
    domain_id = ID,
  },
  { name = ZONE, type = "NS", content = "ns1.hosts.test.", ttl = TTL, domain_id = ID },
  { name = ZONE, type = "NS", content = "ns2.hosts.test.", ttl = TTL, domain_id = ID },
}
local APEX_CODES = {}
for i, row in ipairs(APEX) do
  APEX_CODES[i] = newQType(row.type):getCode()
end
local A_CODE, AAAA_CODE = newQType("A"):getCode(), newQType("AAAA"):getCode()

-- The host's number, or nil: host<N> with N below HOSTS written without leading zeros.
local function host_number(name)
  local digits = match(name, HOST_NAME)
  local number = digits and tonumber(digits)
  if number == nil or number >= HOSTS or #digits ~= #tostring(number) then
    return nil
  end
  return number
end

local function host_rows(name, number, wanted)
  local rows = {}
  if wanted == ANY or wanted == A_CODE then
    local address =
      format("10.%d.%d.%d", floor(number / 65536), floor(number / 256) % 256, number % 256)
    rows[1] = { name = name, type = "A", content = address, ttl = TTL, domain_id = ID }
  end
  if wanted == ANY or wanted == AAAA_CODE then
    local address = format("2001:db8:6::%x:%x", floor(number / 65536), number % 65536)
    rows[#rows + 1] = { name = name, type = "AAAA", content = address, ttl = TTL, domain_id = ID }
  end
  return rows
end

function dns_lookup(qtype, qname, domain_id, ctx)
  local name = lower(qname:toString())
  local wanted = qtype:getCode()
  if name == ZONE then
    local rows = {}
    for i, row in ipairs(APEX) do
      if wanted == ANY or APEX_CODES[i] == wanted then
        rows[#rows + 1] = row
      end
    end
    return rows
  end
  local number = host_number(name)
  if number == nil then
    return {}
  end
  return host_rows(name, number, wanted)
end
