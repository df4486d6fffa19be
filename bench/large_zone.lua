-- bench/large_zone.lua: the 1,000,000-record AXFR `make bench` sends through pdns (bench/run.py,
-- large_axfr). LARGE_ZONE_ROWS sets the size; with LARGE_ZONE_PREBUILT=1 the rows are built once at
-- load (a script serving a table it holds), else dns_list builds them on every call.

local ZONE, ID = "large.test.", 5
local ROWS = tonumber(os.getenv("LARGE_ZONE_ROWS")) or 1000000
local SOA = {
  name = ZONE,
  type = "SOA",
  content = "ns1.large.test. hostmaster.large.test. 1 10800 3600 604800 300",
  ttl = 3600,
  domain_id = ID,
}

local function build()
  local rows = { SOA }
  for i = 2, ROWS do
    rows[i] = {
      name = "h" .. i .. ".large.test.",
      type = "A",
      content = "10." .. math.floor(i / 65536) .. "." .. math.floor(i / 256) % 256 .. "." .. i % 256,
      ttl = 3600,
      domain_id = ID,
    }
  end
  return rows
end

local prebuilt = os.getenv("LARGE_ZONE_PREBUILT") == "1" and build() or nil

function dns_lookup(qtype, qname)
  local code = qtype:getCode()
  if qname:toString() == ZONE and (code == 6 or code == 255) then
    return { SOA }
  end
  return {}
end

function dns_list(target, id)
  return prebuilt or build()
end
