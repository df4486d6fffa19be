-- A DNSSEC-signed lua2 script: pdns signs its answers live with the key below, through native
-- launch=lua2 or through lua2pipe's remote mode (launch=remote, README "Remote mode"). Three
-- zones hold the same names and differ in their denial of existence:
--   nsec.example.    NSEC      (no NSEC3PARAM metadata)
--   nsec3.example.   NSEC3     (NSEC3PARAM 1 0 0 -: SHA-1, no extra iterations, no salt)
--   narrow.example.  NSEC3 narrow (NSEC3PARAM and NSEC3NARROW: pdns hashes names itself)
-- Each has an empty non-terminal chain (a.b.ent: b.ent and ent have no records), a wildcard
-- (*.wild, so wild is an empty non-terminal too) and a delegation with a DS and glue.
--
-- The key is a throwaway Ed25519 CSK made with `pdnsutil generate-zone-key ksk ed25519`:
-- never serve real zones with it. Ed25519 signatures are deterministic, so two servers with
-- this key sign alike.

dns_dnssec = true

local KEY = "Private-key-format: v1.2\nAlgorithm: 15 (ED25519)\n" ..
  "PrivateKey: G4JzO6hGElNf43PRs0VRlsWMDeufti79+znSUwps6Dw=\n"
local SERIAL = 2024010101
local NSEC3PARAM = "1 0 0 -"

local ZONES = {
  { id = 1, name = "nsec.example.", metadata = {} },
  { id = 2, name = "nsec3.example.", metadata = { NSEC3PARAM = { NSEC3PARAM } } },
  { id = 3, name = "narrow.example.",
    metadata = { NSEC3PARAM = { NSEC3PARAM }, NSEC3NARROW = { "1" } } },
}

-- The names of every zone, relative to it ("" is the apex); auth = false for what lies at or
-- below a zone cut but the DS (pdns signs only authoritative data), and a row without type or
-- content is an empty non-terminal.
local RECORDS = {
  { "", "SOA", "ns1.@ hostmaster.@ " .. SERIAL .. " 10800 3600 604800 3600" },
  { "", "NS", "ns1.@" },
  { "", "MX", "10 mail.@" },
  { "ns1", "A", "192.0.2.1" },
  { "www", "A", "192.0.2.80" },
  { "www", "AAAA", "2001:db8::80" },
  { "mail", "A", "192.0.2.25" },
  { "wild" },
  { "*.wild", "TXT", '"wildcard"' },
  { "ent" },
  { "b.ent" },
  { "a.b.ent", "A", "192.0.2.3" },
  { "sub", "NS", "ns.sub.@", false },
  { "sub", "DS", "12345 15 2 " .. string.rep("ab", 32) },
  { "ns.sub", "A", "192.0.2.53", false },
}

-- NSEC3 hashes (SHA-1, no salt, no extra iterations) of nsec3.example.'s names, by relative name,
-- computed with dnspython's dns.dnssec.nsec3_hash. Glue below the cut (ns.sub) has none.
local NSEC3_HASHES = {
  [""] = "krsatb3pjbkrjutskf89t5ms899d2udp",
  ns1 = "dijg48ij5eb81n7a79n7loen1at85fi6",
  www = "m0rjvnuvjo5m8avplr4u8i6amu23n1a5",
  mail = "431q067c8sauff880let73atdh0cuepd",
  wild = "bej5gmqa872jf4dagq0r3o5q7a2o5s9l",
  ["*.wild"] = "68h8cpelv9j77guid44jrc81e5u6qgib",
  ent = "32bq3o4mvvp5m41hoen0s23p1au5h10g",
  ["b.ent"] = "iaqf0et5bg0jm1ae33jc5bpn4js5kstm",
  ["a.b.ent"] = "qdak5hlr9n7bp2msk6o2ki8one6kvkf3",
  sub = "g03ian1lkb7eoo9lkqnom6ajiknn35ur",
}

local function absolute(relative, zone)
  return relative == "" and zone or relative .. "." .. zone
end

-- Rows by zone id and lower-case owner name.
local rows_by_name, zone_by_name, zone_by_id = {}, {}, {}
for _, zone in ipairs(ZONES) do
  zone.dn = newDN(zone.name)
  zone_by_name[zone.name] = zone
  zone_by_id[zone.id] = zone
  zone.rows = {}
  zone.names = {} -- relative names that NSEC covers: every owner but glue below the cut
  local seen = {}
  for _, r in ipairs(RECORDS) do
    local owner = absolute(r[1], zone.name)
    local row = { name = owner, domain_id = zone.id, ttl = 3600 }
    if r[2] then
      row.type, row.content = r[2], r[3]:gsub("@", zone.name)
      row.auth = r[4] ~= false
    else
      row.auth = false -- an empty non-terminal: no type, no content
    end
    zone.rows[#zone.rows + 1] = row
    local key = owner:lower()
    rows_by_name[key] = rows_by_name[key] or {}
    table.insert(rows_by_name[key], row)
    if r[1] ~= "ns.sub" and not seen[r[1]] then
      seen[r[1]] = true
      zone.names[#zone.names + 1] = newDN(r[1] == "" and "." or r[1])
    end
  end
  table.sort(zone.names, function(a, b) return a:canonCompare(b) end)
end

function dns_lookup(qtype, qname, domain_id, ctx)
  local code, out = qtype:getCode(), {}
  for _, row in ipairs(rows_by_name[qname:toString():lower()] or {}) do
    if code == 255 or (row.type and newQType(row.type):getCode() == code) then
      out[#out + 1] = row
    end
  end
  return out
end

function dns_list(target, domain_id)
  local zone = zone_by_name[target:toString():lower()]
  return zone and zone.rows or false
end

local function info(zone)
  return { id = zone.id, serial = SERIAL, kind = "native" }
end

function dns_get_domaininfo(name)
  local zone = zone_by_name[name:toString():lower()]
  return zone and info(zone) or false
end

function dns_get_all_domains()
  local all = {}
  for _, zone in ipairs(ZONES) do all[zone.dn] = info(zone) end
  return all
end

function dns_get_all_domain_metadata(name)
  local zone = zone_by_name[name:toString():lower()]
  return zone and zone.metadata or false
end

function dns_get_domain_metadata(name, kind)
  local zone = zone_by_name[name:toString():lower()]
  return zone and zone.metadata[kind] or false
end

function dns_get_domain_keys(name)
  if not zone_by_name[name:toString():lower()] then return false end
  return { { id = 1, flags = 257, active = true, published = true, content = KEY } }
end

-- before: the greatest name <= qname in `sorted` (by `less`), wrapping to the last; after: the
-- one after before, wrapping to the first.
local function neighbours(sorted, qname, less)
  local index = #sorted
  for i, name in ipairs(sorted) do
    if less(qname, name) then
      index = i - 1
      break
    end
  end
  if index == 0 then index = #sorted end
  return sorted[index], sorted[index % #sorted + 1]
end

-- NSEC: pdns passes the name relative to the zone, lower-case ("." is the apex) and wants
-- relative names back. NSEC3: a hash as a one-label name, and unhashed is the absolute owner of
-- before (pdns reads its types for the bitmap).
function dns_get_before_and_after_names_absolute(id, qname)
  local zone = zone_by_id[id]
  if not zone then return false end
  if not zone.metadata.NSEC3PARAM then
    local before, after = neighbours(zone.names, qname, function(a, b) return a:canonCompare(b) end)
    return { unhashed = qname, before = before, after = after }
  end
  local hashes, owner_of = {}, {}
  for relative, hash in pairs(NSEC3_HASHES) do
    hashes[#hashes + 1] = hash
    owner_of[hash] = absolute(relative, zone.name)
  end
  table.sort(hashes)
  local before, after = neighbours(hashes, qname:toStringNoDot(), function(a, b) return a < b end)
  return { unhashed = newDN(owner_of[before]), before = newDN(before), after = newDN(after) }
end
