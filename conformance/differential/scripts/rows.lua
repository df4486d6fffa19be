-- differential: the row format, one edge per name (zone rows.example, id 5).
--
-- `<case>.rows.example` answers the rows that case builds (whatever the question's type: pdns
-- filters). The cases cover every row key and the value types native lua2 accepts or rejects:
-- a rejected row is SERVFAIL natively; lua2pipe must fail the same questions.

local ZONE_ID = 5
local SOA = "ns.rows.example. hostmaster.rows.example. 2024060101 3600 600 86400 120"
local CASES = {}
local function case(name, fn) CASES[name] = fn end

local function txt(q, content, extra)
  local row = { name = q, type = "TXT", ttl = 300, content = content, domain_id = ZONE_ID }
  for k, v in pairs(extra or {}) do row[k] = v end
  return row
end

-- ttl
case("ttl-float", function(q) return { txt(q, "x", { ttl = 300.7 }) } end)
case("ttl-negative", function(q) return { txt(q, "x", { ttl = -5 }) } end)
case("ttl-string", function(q) return { txt(q, "x", { ttl = "120" }) } end)
case("ttl-hex-string", function(q) return { txt(q, "x", { ttl = " 0x1F " }) } end)
case("ttl-missing", function(q) return { txt(q, "x", { ttl = false }) } end)
case("ttl-bool", function(q) return { txt(q, "x", { ttl = true }) } end)
-- type
case("type-number", function(q) return { txt(q, "x", { type = 16 }) } end)
case("type-lower", function(q) return { txt(q, "x", { type = "txt" }) } end)
case("type-typen", function(q) return { txt(q, "x", { type = "TYPE16" }) } end)
case("type-hash", function(q) return { txt(q, "x", { type = "#16" }) } end)
case("type-qtype", function(q) return { txt(q, "x", { type = newQType("TXT") }) } end)
case("type-unknown", function(q) return { txt(q, "x", { type = "BOGUS" }) } end)
case("type-bool", function(q) return { txt(q, "x", { type = true }) } end)
case("type-rfc3597", function(q) return { txt(q, "\\# 2 abcd", { type = "TYPE65280" }) } end)
-- name
case("name-string", function() return { txt("name-string.rows.example", "x") } end)
case("name-string-dot", function() return { txt("Name-String-Dot.rows.example.", "x") } end)
case("name-other", function() return { txt(newDN("elsewhere.rows.example"), "x") } end)
case("name-missing", function(q) return { txt(q, "x", { name = false }) } end)
case("name-number", function() return { txt(123, "x") } end)
case("name-bad", function() return { txt("a..b.rows.example", "x") } end)
case("name-escaped", function() return { txt("name-escaped.rows.example", "x"), txt("we\\032ird.rows.example", "y") } end)
case("name-upper", function() return { txt(newDN("NAME-UPPER.ROWS.EXAMPLE"), "x") } end)
-- content
case("content-number", function(q) return { txt(q, 123) } end)
case("content-numeric-string", function(q) return { txt(q, "10") } end)
case("content-missing", function(q) return { { name = q, type = "A", ttl = 300, domain_id = ZONE_ID } } end)
case("content-bad-a", function(q) return { { name = q, type = "A", ttl = 300, content = "not-an-ip", domain_id = ZONE_ID } } end)
case("content-spaces-a", function(q) return { { name = q, type = "A", ttl = 300, content = " 192.0.2.1 ", domain_id = ZONE_ID } } end)
case("txt-autoquote", function(q) return { txt(q, "hello world") } end)
case("txt-inner-quote", function(q) return { txt(q, 'a "b" c') } end)
case("txt-tab", function(q) return { txt(q, "a\tb"), txt(q, '"c\td"') } end)
case("txt-newline", function(q) return { txt(q, '"line1\nline2"') } end)
case("txt-spaces", function(q) return { txt(q, '"x"   "y"  '), txt(q, '"  padded  "') } end)
case("txt-escapes", function(q) return { txt(q, '"semi;colon" "back\\\\slash" "quote\\"d" "\\200"') } end)
case("cname-nodot", function(q) return { { name = q, type = "CNAME", ttl = 300, content = "target.rows.example", domain_id = ZONE_ID } } end)
case("mx-nodot", function(q) return { { name = q, type = "MX", ttl = 300, content = "10 mail.rows.example", domain_id = ZONE_ID } } end)
case("mx-bad", function(q) return { { name = q, type = "MX", ttl = 300, content = "mail.rows.example.", domain_id = ZONE_ID } } end)
case("mx-root", function(q) return { { name = q, type = "MX", ttl = 300, content = "0 .", domain_id = ZONE_ID } } end)
case("srv", function(q) return { { name = q, type = "SRV", ttl = 300, content = "10 20 5060 sip.rows.example", domain_id = ZONE_ID } } end)
case("srv-tabs", function(q) return { { name = q, type = "SRV", ttl = 300, content = "10\t20\t5060\tsip.rows.example.", domain_id = ZONE_ID } } end)
case("soa-inside", function(q) return { { name = q, type = "SOA", ttl = 300, content = SOA, domain_id = ZONE_ID } } end)
-- auth, scopeMask, the other keys
case("auth-false", function(q) return { txt(q, "x", { auth = false }) } end)
case("auth-true", function(q) return { txt(q, "x", { auth = true }) } end)
case("auth-int", function(q) return { txt(q, "x", { auth = 1 }) } end)
case("auth-string", function(q) return { txt(q, "x", { auth = "yes" }) } end)
case("scopemask", function(q) return { txt(q, "x", { scopeMask = 20 }) } end)
case("scopemask-string", function(q) return { txt(q, "x", { scopeMask = "22" }) } end)
case("scopemask-big", function(q) return { txt(q, "x", { scopeMask = 300 }) } end)
case("scope-mask-alias", function(q) return { txt(q, "x", { scope_mask = 20 }) } end)
case("scopemask-mixed", function(q) return { txt(q, "x", { scopeMask = 24 }), txt(q, "y", { scopeMask = 16 }) } end)
case("domain-id-other", function(q) return { txt(q, "x", { domain_id = 99 }) } end)
case("domain-id-missing", function(q) return { txt(q, "x", { domain_id = false }) } end)
case("last-modified", function(q) return { txt(q, "x", { last_modified = 1700000000 }) } end)
case("unknown-key", function(q) return { txt(q, "x", { colour = "blue" }) } end)
case("table-value", function(q) return { txt(q, "x", { extra = {} }) } end)
case("function-value", function(q) return { txt(q, "x", { extra = print }) } end)
-- result shapes
case("gaps", function(q) return { [1] = txt(q, "one"), [5] = txt(q, "five") } end)
case("float-keys", function(q) return { [1.5] = txt(q, "one") } end)
case("string-keys", function(q) return { a = txt(q, "x") } end)
case("empty", function() return {} end)
case("return-nil", function() return nil end)
case("return-false", function() return false end)
case("return-string", function() return "x" end)
case("row-not-table", function() return { "x" } end)
case("duplicates", function(q) return { txt(q, "same"), txt(q, "same") } end)
case("mixed-types", function(q)
  return { txt(q, "t"), { name = q, type = "A", ttl = 300, content = "192.0.2.9", domain_id = ZONE_ID } }
end)
case("many-ttls", function(q) return { txt(q, "a", { ttl = 100 }), txt(q, "b", { ttl = 200 }) } end)
-- the edges: the longest name (a longer one, 256 bytes in wire form, natively gives a packet no
-- client can parse, so it is tested through pdns in tests/test_fidelity.py), TTLs out of range,
-- contents and keys native refuses
local L63 = string.rep("a", 63)
case("name-longest", function() return { txt(L63 .. "." .. L63 .. "." .. L63 .. "." .. string.rep("c", 61), "x") } end)
case("name-empty", function(q) return { txt(q:makeRelative(newDN("other.example")), "x") } end)
case("ttl-1e20", function(q) return { txt(q, "x", { ttl = 1e20 }) } end)
case("ttl-huge-string", function(q) return { txt(q, "x", { ttl = "99999999999999999999" }) } end)
case("ttl-nan", function(q) return { txt(q, "x", { ttl = 0 / 0 }) } end)
case("ttl-inf", function(q) return { txt(q, "x", { ttl = math.huge }) } end)
case("content-float", function(q) return { txt(q, 1.5) } end)
case("content-negative-zero", function(q) return { txt(q, -0.0) } end)
case("spf-unquoted", function(q) return { { name = q, type = "SPF", ttl = 300, content = "v=spf1 -all", domain_id = ZONE_ID } } end)
case("spf-quoted", function(q) return { { name = q, type = "SPF", ttl = 300, content = '"v=spf1 -all"', domain_id = ZONE_ID } } end)
case("txt-trailing-vt", function(q) return { txt(q, '"abc"\v') } end)
case("a-trailing-vt", function(q) return { { name = q, type = "A", ttl = 300, content = "192.0.2.1\v", domain_id = ZONE_ID } } end)
case("cname-control", function(q) return { { name = q, type = "CNAME", ttl = 300, content = "a\1b.rows.example.", domain_id = ZONE_ID } } end)
case("cname-nul", function(q) return { { name = q, type = "CNAME", ttl = 300, content = "a\0b.rows.example.", domain_id = ZONE_ID } } end)
case("cname-trailing-vt", function(q) return { { name = q, type = "CNAME", ttl = 300, content = "b.rows.example.\v", domain_id = ZONE_ID } } end)
case("mx-vt", function(q) return { { name = q, type = "MX", ttl = 300, content = "10\vmail.rows.example.", domain_id = ZONE_ID } } end)
case("mx-glued", function(q) return { { name = q, type = "MX", ttl = 300, content = "10mail.rows.example.", domain_id = ZONE_ID } } end)
case("srv-vt", function(q) return { { name = q, type = "SRV", ttl = 300, content = "10\v20 5060 sip.rows.example.", domain_id = ZONE_ID } } end)
case("key-true", function(q) return { txt(q, "x", { [true] = 1 }) } end)
case("key-dnsname", function(q) return { txt(q, "x", { [newDN("k")] = 1 }) } end)
case("error", function() error("boom") end)
case("error-table", function() error({ code = 1 }) end)
case("error-level0", function() error("no position", 0) end)

function dns_lookup(qtype, qname, domain_id, ctx)
  local zone = newDN("rows.example")
  if not qname:isPartOf(zone) then return {} end
  if qname == zone then
    local rows = {}
    if qtype:getCode() == pdns.SOA or qtype:getCode() == pdns.ANY then
      rows[#rows + 1] = { name = qname, type = "SOA", ttl = 3600, content = SOA, domain_id = ZONE_ID }
    end
    if qtype:getCode() == pdns.NS or qtype:getCode() == pdns.ANY then
      rows[#rows + 1] = { name = qname, type = "NS", ttl = 3600, content = "ns.rows.example.", domain_id = ZONE_ID }
    end
    return rows
  end
  if qtype:getCode() == pdns.SOA and domain_id == -1 then return {} end -- the zone walk, below the apex
  local label = qname:getRawLabels()[1]:lower()
  local fn = CASES[label]
  if fn and qname:countLabels() == 3 then
    local rows = fn(qname)
    -- "false" in a case means "leave the key out"
    if type(rows) == "table" then
      for _, row in pairs(rows) do
        if type(row) == "table" then
          for k, v in pairs(row) do if v == false and k ~= "auth" then row[k] = nil end end
        end
      end
    end
    return rows
  end
  return {}
end
