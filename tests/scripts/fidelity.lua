-- Rows and errors at the edges, each as native lua2 (pdns 4.7.3) treats it (test_fidelity.py).
-- `<case>.example.org` answers the case's rows; anything else one TXT row naming the question.

local cases = {}
local function row(fields)
  fields.type = fields.type or "TXT"
  return { fields }
end

local l63, l62, l61 = string.rep("a", 63), string.rep("b", 62), string.rep("c", 61)
-- 254 characters without a final dot: DNSName() takes it, but it is 256 bytes in wire form
local TOO_LONG = l63 .. "." .. l63 .. "." .. l63 .. "." .. l62
-- 253 characters: 255 bytes in wire form, the longest name there is
local LONGEST = l63 .. "." .. l63 .. "." .. l63 .. "." .. l61

cases.long_wire_string = function() return row({ name = TOO_LONG, content = "x" }) end
cases.long_wire_dnsname = function() return row({ name = newDN(TOO_LONG), content = "x" }) end
cases.longest_name = function() return row({ name = LONGEST, content = "x" }) end
cases.longest_dnsname = function() return row({ name = newDN(LONGEST .. "."), content = "x" }) end
cases.empty_name = function(qname) return row({ name = qname:makeRelative(newDN("other.test")), content = "x" }) end
cases.content_float = function(qname) return row({ name = qname, content = 1.5 }) end
cases.content_negative_zero = function(qname) return row({ name = qname, content = -0.0 }) end
cases.content_int32_wrap = function(qname) return row({ name = qname, content = 2 ^ 31 }) end
cases.spf_unquoted = function(qname) return row({ name = qname, type = "SPF", content = "v=spf1 -all" }) end
cases.key_true = function(qname) return { { name = qname, type = "TXT", content = "x", [true] = 1 } } end
cases.key_dnsname = function(qname) return { { name = qname, type = "TXT", content = "x", [newDN("k")] = 1 } } end
cases.cname_control = function(qname) return row({ name = qname, type = "CNAME", content = "a\1b.example." }) end
cases.cname_trailing_vt = function(qname) return row({ name = qname, type = "CNAME", content = "b.example.\v" }) end
cases.txt_trailing_vt = function(qname) return row({ name = qname, content = '"abc"\v' }) end
cases.error_tostring_raises = function()
  error(setmetatable({}, { __tostring = function() error("no text for you") end }))
end
cases.error_tostring_table = function()
  error(setmetatable({}, { __tostring = function() return {} end }))
end
cases.error_huge = function() error(string.rep("x", 25 * 1000 * 1000)) end
local HOOKED = { { name = "sethook.example.org", type = "TXT", content = "hooked" } }
cases.sethook = function()
  -- a call hook that raises: natively it fires when pdns next calls dns_lookup (after sethook
  -- returns, this function calls nothing more)
  local fail = error
  debug.sethook(function() fail("the hook says no") end, "c")
  return HOOKED
end
cases.mx_vt = function(qname) return row({ name = qname, type = "MX", content = "10\vmail.example." }) end
cases.mx_glued = function(qname) return row({ name = qname, type = "MX", content = "10mail.example." }) end

function dns_lookup(_, qname)
  local case = cases[qname:getRawLabels()[1]]
  if case then return case(qname) end
  return row({ name = qname, content = qname:toString() })
end
