-- A script-served primary for tests/test_secondary.py: one zone signed live (NSEC), of kind
-- PRIMARY, whose SOA serial is read from the file the global SERIAL_FILE names (set by the test
-- in front of this text). A file, because each pdns backend instance runs its own coprocess.
-- The notified serial is this process's own: pdns's communicator instance asks for the zones to
-- notify (getUpdatedMasters, from dns_get_all_domains) and calls dns_set_notified in one process.

dns_dnssec = true

-- the throwaway Ed25519 CSK of examples/signed.lua: never serve real zones with it
local KEY = "Private-key-format: v1.2\nAlgorithm: 15 (ED25519)\n"
  .. "PrivateKey: G4JzO6hGElNf43PRs0VRlsWMDeufti79+znSUwps6Dw=\n"
local ZONE, ID = "primary.example.", 1
local notified = 0

local function serial()
  local file = assert(io.open(SERIAL_FILE))
  local value = tonumber(file:read("*l"))
  file:close()
  return value
end

-- { relative name, type, content }; a name without type is an empty non-terminal
local RECORDS = {
  { "", "NS", "ns1.@" },
  { "ns1", "A", "192.0.2.1" },
  { "www", "A", "192.0.2.80" },
  { "ent" },
  { "a.ent", "TXT", '"below an empty non-terminal"' },
}

local function rows()
  local out = {
    { name = ZONE, type = "SOA", ttl = 3600, domain_id = ID,
      content = "ns1." .. ZONE .. " hostmaster." .. ZONE .. " " .. serial() .. " 10800 3600 604800 3600" },
  }
  for _, r in ipairs(RECORDS) do
    local row = { name = r[1] == "" and ZONE or r[1] .. "." .. ZONE, ttl = 3600, domain_id = ID }
    if r[2] then
      row.type, row.content = r[2], r[3]:gsub("@", ZONE)
    else
      row.auth = false
    end
    out[#out + 1] = row
  end
  return out
end

function dns_lookup(qtype, qname, domain_id, ctx)
  local name, code, out = qname:toString():lower(), qtype:getCode(), {}
  for _, row in ipairs(rows()) do
    if row.name == name and (code == 255 or (row.type and newQType(row.type):getCode() == code)) then
      out[#out + 1] = row
    end
  end
  return out
end

function dns_list(target, domain_id)
  return target:toString():lower() == ZONE and rows() or false
end

local function info()
  return { id = ID, kind = "PRIMARY", serial = serial(), notified_serial = notified }
end

function dns_get_all_domains()
  return { [newDN(ZONE)] = info() }
end

function dns_get_domaininfo(name)
  return name:toString():lower() == ZONE and info() or false
end

function dns_get_domain_keys(name)
  if name:toString():lower() ~= ZONE then return false end
  return { { id = 1, flags = 257, active = true, published = true, content = KEY } }
end

function dns_set_notified(id, value)
  notified = value
end

-- NSEC (no NSEC3PARAM): native lua2 needs these two hooks whenever dns_dnssec is true.
function dns_get_all_domain_metadata(name)
  return name:toString():lower() == ZONE and {} or false
end

function dns_get_domain_metadata(name, kind)
  return false
end

-- The zone's names relative to it, in canonical order ("." is the apex), for live denials:
-- pdns passes a relative lower-case name and wants the relative names before and after it.
local NAMES = {}
for _, name in ipairs({ ".", "ns1", "www", "ent", "a.ent" }) do
  NAMES[#NAMES + 1] = newDN(name)
end
table.sort(NAMES, function(a, b) return a:canonCompare(b) end)

function dns_get_before_and_after_names_absolute(id, qname)
  local index = #NAMES
  for i, name in ipairs(NAMES) do
    if qname:canonCompare(name) then
      index = i - 1
      break
    end
  end
  if index == 0 then index = #NAMES end
  return { unhashed = qname, before = NAMES[index], after = NAMES[index % #NAMES + 1] }
end
