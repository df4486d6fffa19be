-- bench/large_zone.lua: the 1,000,000-record AXFR `make bench` sends through pdns (bench/run.py,
-- large_axfr). LARGE_ZONE_ROWS sets the size; with LARGE_ZONE_PREBUILT=1 the rows are built once at
-- load (a script serving a table it holds), else dns_list builds them on every call. With
-- LARGE_ZONE_SHARED=1 the rows after the SOA are 1,000 row tables over and over (pdns transfers
-- the repeats as they come): the rows cost 8 MB of Lua heap, so what the coprocess holds beyond
-- that is lua2pipe's own. (1,000, not a divisor of the 1024 rows lua2pipe streams at a time:
-- equal parts would be one interned string on LuaJIT.)

local ZONE, ID = "large.test.", 5
local ROWS = tonumber(os.getenv("LARGE_ZONE_ROWS")) or 1000000
local SOA = {
  name = ZONE,
  type = "SOA",
  content = "ns1.large.test. hostmaster.large.test. 1 10800 3600 604800 300",
  ttl = 3600,
  domain_id = ID,
}

local function row(i)
  return {
    name = "h" .. i .. ".large.test.",
    type = "A",
    content = "10." .. math.floor(i / 65536) .. "." .. math.floor(i / 256) % 256 .. "." .. i % 256,
    ttl = 3600,
    domain_id = ID,
  }
end

local function shared()
  local rows, hosts = { SOA }, {}
  for i = 1, 1000 do
    hosts[i] = row(i)
  end
  for i = 2, ROWS do
    rows[i] = hosts[i % 1000 + 1]
  end
  return rows
end

local function build()
  local rows = { SOA }
  for i = 2, ROWS do
    rows[i] = row(i)
  end
  return rows
end

local rows_of_zone = os.getenv("LARGE_ZONE_SHARED") == "1" and shared or build
local prebuilt = os.getenv("LARGE_ZONE_PREBUILT") == "1" and rows_of_zone() or nil

function dns_lookup(qtype, qname)
  local code = qtype:getCode()
  if qname:toString() == ZONE and (code == 6 or code == 255) then
    return { SOA }
  end
  return {}
end

function dns_list(target, id)
  return prebuilt or rows_of_zone()
end
