-- Script for the protocol and row tests: the first label of the question picks the case, and
-- each case returns the rows (or raises the error) its test is about.

local cases = {}

local function txt(text)
  return { { name = "t.example.org", type = "TXT", content = text, ttl = 60, domain_id = 1 } }
end

-- What dns_lookup received.
cases.args = function(qtype, qname, domain_id)
  return txt(string.format("qtype=%s qname=%s id=%d", tostring(qtype), tostring(qname), domain_id))
end
cases.ctx = function(_, _, _, ctx)
  local keys = 0
  for _ in pairs(ctx) do keys = keys + 1 end
  return txt(string.format("keys=%d source=%s real=%s", keys, tostring(ctx.source_address),
    tostring(ctx.real_source_address)))
end

-- Every accepted key and value type.
cases.name_string = function() return { { name = "Www.Example.org", type = "A", content = "192.0.2.1" } } end
cases.name_dn = function() return { { name = newDN("x.example.org"), type = "A", content = "192.0.2.1" } } end
cases.name_missing = function() return { { type = "A", content = "192.0.2.1" } } end
cases.type_qtype = function() return { { name = "a.example.org", type = newQType("AAAA"), content = "2001:db8::1" } } end
cases.type_lower = function() return { { name = "a.example.org", type = "aaaa", content = "2001:db8::1" } } end
cases.type_code = function() return { { name = "a.example.org", type = 28, content = "2001:db8::1" } } end
cases.type_numeric_string = function() return { { name = "a.example.org", type = "28", content = "2001:db8::1" } } end
cases.type_unknown_code = function() return { { name = "a.example.org", type = 65280, content = "\\# 0" } } end
cases.content_number = function() return { { name = "a.example.org", type = "TXT", content = 42.9 } } end
cases.ttl_string = function() return { { name = "a.example.org", type = "A", content = "192.0.2.1", ttl = "300" } } end
cases.ttl_fraction = function() return { { name = "a.example.org", type = "A", content = "192.0.2.1", ttl = 300.7 } } end
cases.ttl_negative = function() return { { name = "a.example.org", type = "A", content = "192.0.2.1", ttl = -5 } } end
cases.domain_id_wrap = function() return { { name = "a.example.org", type = "A", content = "192.0.2.1", domain_id = 4294967295 } } end
cases.auth_false = function() return { { name = "a.example.org", type = "A", content = "192.0.2.1", auth = false } } end
cases.auth_int = function() return { { name = "a.example.org", type = "A", content = "192.0.2.1", auth = 0 } } end
cases.scope_mask = function() return { { name = "a.example.org", type = "A", content = "192.0.2.1", scopeMask = 24 } } end
cases.scope_mask_docs = function() return { { name = "a.example.org", type = "A", content = "192.0.2.1", scope_mask = 280 } } end
cases.last_modified = function() return { { name = "a.example.org", type = "A", content = "192.0.2.1", last_modified = 1700000000 } } end
cases.unknown_key = function() return { { name = "a.example.org", type = "A", content = "192.0.2.1", colour = "blue" } } end
cases.gaps = function()
  return { [1] = { name = "a.example.org", type = "A", content = "192.0.2.1" },
           [5] = { name = "a.example.org", type = "A", content = "192.0.2.5" } }
end
cases.empty = function() return {} end

-- Contents that need care on the pipe.
cases.mx = function() return { { name = "example.org", type = "MX", content = "10 mx.example.org." } } end
cases.srv = function() return { { name = "_sip._udp.example.org", type = "SRV", content = "10 20 5060 sip.example.org." } } end
cases.mx_no_priority = function() return { { name = "example.org", type = "MX", content = "mx.example.org." } } end
cases.txt_unquoted = function() return { { name = "a.example.org", type = "TXT", content = "hello world" } } end
cases.txt_tab = function() return { { name = "a.example.org", type = "TXT", content = '"a\tb" "c\\\td"' } } end
cases.txt_newline = function() return { { name = "a.example.org", type = "TXT", content = "line1\nline2" } } end
cases.whitespace_outside = function() return { { name = "a.example.org", type = "A", content = "192.0.2.1\r\n" } } end
cases.control_outside = function() return { { name = "a.example.org", type = "A", content = "192.0.2.1\0" } } end
cases.empty_content = function() return { { name = "a.example.org", type = "A", content = "" } } end
cases.ent = function() return { { name = "ent.example.org" } } end
cases.label_63 = function() return { { name = string.rep("a", 63) .. ".example.org", type = "A", content = "192.0.2.1" } } end
cases.spaces_content = function() return { { name = "a.example.org", type = "A", content = "  \t " } } end
cases.escaped_name = function() return { { name = "a b.example.org", type = "A", content = "192.0.2.1" } } end

-- Results native lua2 rejects.
cases.bad_ttl = function() return { { name = "a.example.org", type = "A", content = "192.0.2.1", ttl = true } } end
cases.bad_content = function() return { { name = "a.example.org", type = "A", content = true } } end
cases.bad_name = function() return { { name = 123, type = "A", content = "192.0.2.1" } } end
cases.bad_label_64 = function() return { { name = string.rep("a", 64) .. ".example.org", type = "A", content = "192.0.2.1" } } end
cases.bad_leading_dot = function() return { { name = ".a.example.org", type = "A", content = "192.0.2.1" } } end
cases.bad_name_text = function() return { { name = "a..b", type = "A", content = "192.0.2.1" } } end
cases.bad_auth = function() return { { name = "a.example.org", type = "A", content = "192.0.2.1", auth = "yes" } } end
cases.table_value = function() return { { name = "a.example.org", type = "A", content = "192.0.2.1", extra = {} } } end
cases.function_value = function() return { { name = "a.example.org", type = "A", content = print } } end
cases.not_table = function() return "nope" end
cases.nil_result = function() return nil end
cases.row_not_table = function() return { "a.example.org" } end
cases.string_key = function() return { first = { name = "a.example.org", type = "A", content = "192.0.2.1" } } end
cases.coroutine = function() return { { name = "a.example.org", type = "A", content = coroutine.create(print) } } end

-- Errors and noise.
cases.boom = function() error("boom from the script") end
cases.boom_table = function() error({ code = 1 }) end
cases.env_error = function() return { { name = newDN("a..b"), type = "A", content = "192.0.2.1" } } end
cases.noisy = function()
  print("print from dns_lookup")
  io.write("io.write from dns_lookup\n")
  io.stdout:write("io.stdout:write from dns_lookup\n")
  return { { name = "noisy.example.org", type = "A", content = "192.0.2.7" } }
end

cases.soa = function(qtype)
  if qtype:getCode() ~= pdns.SOA then return {} end
  return { { name = "soa.example.org", type = "SOA", content = "ns.example.org. h.example.org. 1 2 3 4 5", domain_id = 7 } }
end

function dns_lookup(qtype, qname, domain_id, ctx)
  local label = tostring(qname):match("^([^.]*)")
  local case = cases[label]
  if not case then return {} end
  return case(qtype, qname, domain_id, ctx)
end

-- LARGE_ZONE: an answer far over any buffer the dispatcher keeps between questions.
local LARGE_ZONE, LARGE_ROWS = "large.example.", 5000

function dns_list(target, domain_id)
  if tostring(target) == "missing.example." then return false end
  if tostring(target) == LARGE_ZONE then
    local rows = {}
    for i = 1, LARGE_ROWS do
      rows[i] = { name = "h" .. i .. "." .. LARGE_ZONE, type = "A", content = "10.0.0." .. i % 256, domain_id = domain_id }
    end
    return rows
  end
  return {
    { name = target, type = "SOA", content = "ns.example.org. h.example.org. 1 2 3 4 5", domain_id = domain_id },
    { name = "www." .. tostring(target), type = "A", content = "192.0.2.1", domain_id = domain_id },
  }
end

function echo(text) return "echo:" .. text end
function half(text) return tonumber(text) / 2 end -- a float on Lua 5.3+, as every division is
