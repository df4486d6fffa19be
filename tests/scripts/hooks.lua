-- A lua2 script that implements every hook, for the CMD and command-line tests (test_cmd.py,
-- test_cli.py, test_pdnsutil.py) and the examples in README.md. It serves the zone
-- example.com (id 7) and knows example.net (id 8). Some names and kinds make a hook misbehave
-- on purpose; each is marked "contract test" below.
--
-- The DNSSEC keys are throwaway test keys made with `pdnsutil generate-zone-key`; never use them.

local ZONE = "example.com."
local ZONE_ID = 7
local SOA = "ns1.example.com. hostmaster.example.com. 2024010101 10800 3600 604800 300"

local records = {
  { name = "example.com.", type = "SOA", content = SOA },
  { name = "example.com.", type = "NS", content = "ns1.example.com." },
  { name = "example.com.", type = "MX", content = "10 mail.example.com." },
  { name = "ns1.example.com.", type = "A", content = "192.0.2.1" },
  { name = "www.example.com.", type = "A", content = "192.0.2.80" },
  { name = "www.example.com.", type = "AAAA", content = "2001:db8::80" },
  { name = "mail.example.com.", type = "A", content = "192.0.2.25" },
  { name = "txt.example.com.", type = "TXT", content = '"hello world"' },
  -- contract test: content that pdns cannot parse (lua2pipe query/axfr flag it)
  { name = "bad.example.com.", type = "A", content = "not-an-address" },
}

local notified = {} -- id -> serial, set by dns_set_notified
local seen_ctx = "" -- what the last dns_lookup got as ctx, for the ctx() function

local function rows_for(qtype, qname)
  local out = {}
  local wanted = qtype:getCode()
  for _, r in ipairs(records) do
    if newDN(r.name) == qname and (wanted == 255 or newQType(r.type):getCode() == wanted) then
      out[#out + 1] = { name = r.name, type = r.type, content = r.content, ttl = 300,
        domain_id = ZONE_ID }
    end
  end
  return out
end

function dns_lookup(qtype, qname, domain_id, ctx)
  local keys = {}
  for k, v in pairs(ctx) do keys[#keys + 1] = k .. "=" .. tostring(v) end
  table.sort(keys)
  seen_ctx = table.concat(keys, " ")
  if qname == newDN("raise.example.com") then error("lookup raised on purpose") end
  if qname == newDN("ctx.example.com") and (qtype:getCode() == 16 or qtype:getCode() == 255) then
    return { { name = "ctx.example.com.", type = "TXT", ttl = 60, domain_id = domain_id,
      content = '"' .. seen_ctx .. '"' } }
  end
  return rows_for(qtype, qname)
end

function dns_list(target, domain_id)
  if target ~= newDN(ZONE) then return false end
  local out = {}
  for i, r in ipairs(records) do
    out[i] = { name = r.name, type = r.type, content = r.content, ttl = 300, domain_id = ZONE_ID }
  end
  return out
end

local INFO = {
  ["example.com."] = { id = ZONE_ID, kind = "MASTER", serial = 2024010101,
    notified_serial = 2024010100, account = "dns team" },
  ["example.net."] = { id = 8, kind = "native", serial = 1 },
}

function dns_get_domaininfo(domain)
  local name = domain:toString():lower()
  if name == "raise.example." then error("domaininfo raised on purpose") end
  if name == "boolean.example." then return { id = 3, serial = true } end -- contract test
  if name == "unknown-key.example." then return { id = 4, colour = "blue" } end -- warning
  return INFO[name] or false
end

function dns_get_all_domains()
  local all = {}
  for name, info in pairs(INFO) do all[newDN(name)] = info end
  return all
end

local METADATA = {
  ["ALSO-NOTIFY"] = { "192.0.2.1", "192.0.2.2" },
  ["SOA-EDIT"] = { "INCEPTION-INCREMENT" },
}

function dns_get_domain_metadata(domain, kind)
  if domain ~= newDN(ZONE) then return false end
  if kind == "RAISE" then error("metadata raised on purpose") end
  if kind == "NUMBERS" then return { 1, 2 } end -- numbers are stringified, as native does
  if kind == "NOT-AN-ARRAY" then return { a = "x" } end -- contract test
  return METADATA[kind] or {}
end

function dns_get_all_domain_metadata(domain)
  if domain ~= newDN(ZONE) then return false end
  return METADATA
end

local KEYS = {
  { id = 1, flags = 257, active = true, published = true,
    content = "Private-key-format: v1.2\nAlgorithm: 13 (ECDSAP256SHA256)\nPrivateKey: 3O2OLnC+Y6mVhlkhLW1mZnknDJWuzUHLWF952m3saI4=\n" },
  { id = 2, flags = 256, active = true, published = true,
    content = "Private-key-format: v1.2\nAlgorithm: 15 (ED25519)\nPrivateKey: AkcPhpUTobilj9jBMSl4jdVziqcCT1nMm5nufrwwnR8=\n" },
  { id = 3, flags = 256, active = true, published = true,
    content = "Private-key-format: v1.2\nAlgorithm: 8 (RSASHA256)\nModulus: 4Bc8+GZB0AfbmkMK++4K4v8KNFNll2io4CYsG2x7EYssuNLwuWJH88kfEhInLvq4o2+sD/ZNfSCJzkn4wICjtsVzHVXsehuJwkCqhtwQ+GuyVcn8Rk3mfrWhnPiWfhGDbYkEHHWbULxhVA+D9j1lagE4vf17uiFv4YvzRNPww40=\nPublicExponent: AQAB\nPrivateExponent: jBCaUFyB+EhhD5umCu+vqFBnDWuvDSMiou/ZE88LYVzPODrIsebnOE5WeFIWYbvemnEbZ+K4bmRfHiyIKbJ+IHzZYcVwF0lkAmJcxhqMFx8kcwRfcxUqNW73/jdeoHfPxW4BVvZ0QKmC5ZPq8uGG2p+cuI6dbFLsqM9PJUyqBlU=\nPrime1: 92OpcXdGDMHaP+MDExMenEBExG4vITNyBZMBV87HkN+xl4qjHowq7P/XZ3yw2yj8t+DdkjjbISmxRZQQQ3J7Mw==\nPrime2: 5+P6HW30omZDy0N3HYP0oCujr+PACiZuXfEQr5rizYHo/cmcsFOHirnhQaOMYCTj4yxw9mnkxGjwDG0pupnGPw==\nExponent1: uzvppV/RW5xoE0w8KnahBz85DLYb43PtSzy8mnl83y/+WCRsWpVZc7Aalk9wBx8ZTg3ZhG6Vop7MdU2flXySsw==\nExponent2: waxWqV28hCaFWK7wPWaIWX4ZKD4/ljqi0zMTjJb/9kQaJFzO0TXybprw17GQ/HvTGVl0v1mSB7jdRIOn5oGoYQ==\nCoefficient: ugo4SNB0+ASTpvPnXLAUtPOvd/6pnezXFpA0c19HJCqcUQ2KjizNdDhRNTnzhhW4RC1K8kLzyQ6WzQj234HJ2g==\n" },
  { id = 4, flags = 256, active = false, published = true,
    content = "Private-key-format: v1.2\nAlgorithm: 14 (ECDSAP384SHA384)\nPrivateKey: gNBJRlZ7QwSZl6dWk16vJ4ysz2SgPOjagHIqgJxpp3NGaqhrQQOgvCywZ2fx6Bjf\n" },
  { id = 5, flags = 256, active = true, published = true,
    content = "Private-key-format: v1.2\nAlgorithm: 16 (ED448)\nPrivateKey: 7YJZHFDGa/wzfkwMKRgs+10IwFpHHE9yxNe6jXVNFPQ529PF3zOteXldppBT4kgibTumDljSk805\n" },
}

function dns_get_domain_keys(domain)
  if domain == newDN("raise.example") then error("keys raised on purpose") end
  if domain ~= newDN(ZONE) then return false end
  return KEYS
end

-- NSEC order of the zone's names, for dns_get_before_and_after_names_absolute.
local ORDER = { "example.com.", "bad.example.com.", "mail.example.com.", "ns1.example.com.",
  "txt.example.com.", "www.example.com." }

function dns_get_before_and_after_names_absolute(id, qname)
  if id ~= ZONE_ID then return false end
  local name = qname:toString():lower()
  if name == "four.example.com." then -- contract test: one key too many
    return { unhashed = qname, before = qname, after = qname, extra = qname }
  end
  if name == "two.example.com." then return { unhashed = qname, before = qname } end -- contract test
  if name == "wrongkey.example.com." then -- contract test
    return { unhashed = qname, before = qname, later = qname }
  end
  local before, after = ORDER[#ORDER], ORDER[1]
  for i, n in ipairs(ORDER) do
    if n == name then
      before, after = ORDER[(i - 2) % #ORDER + 1], ORDER[i % #ORDER + 1]
    end
  end
  return { unhashed = qname, before = before, after = newDN(after) }
end

function dns_set_notified(id, serial)
  if id == 666 then error("set_notified raised on purpose") end
  notified[id] = serial
end

dns_dnssec = true

-- Functions for backend-cmd (CMD NAME ARGS), as under native lua2.
function echo(arg) return "echo:" .. arg end
function answer() return 42 end
function raise() error("script function raised on purpose") end
function nothing() end
function lines() return "one\nEND\ntwo" end
function ctx() return seen_ctx end
function notified_serial(arg) return tostring(notified[tonumber(arg)]) end
function version() return "hooks.lua 1" end -- shadows the built-in version

-- Aliases of Lua built-ins are not callable through CMD, whatever their name.
run_shell = os.execute
read_file = dofile
