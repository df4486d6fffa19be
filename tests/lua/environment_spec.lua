-- Assertions run inside Lua against the installed environment (see
-- tests/test_environment.py::test_lua_spec_file). Each check names itself so a
-- failure says which one broke; the chunk returns "ok <count>".

local count = 0

local function check(name, got, want)
  count = count + 1
  if got ~= want then
    error(string.format("%s: got %s, want %s", name, tostring(got), tostring(want)), 2)
  end
end

local function raises(name, fn, fragment)
  count = count + 1
  local ok, err = pcall(fn)
  if ok then
    error(name .. ": expected an error", 2)
  end
  if fragment and not string.find(tostring(err), fragment, 1, true) then
    error(string.format("%s: error %q lacks %q", name, tostring(err), fragment), 2)
  end
end

-- DNSName
local qname = newDN("WWW.Example.COM")
check("case kept", qname:toString(), "WWW.Example.COM.")
check("equal ignores case", qname:equal("www.example.com"), true)
check("== ignores case", qname == newDN("www.example.com."), true)
check("isPartOf", qname:isPartOf(newDN("example.com")), true)
check("makeRelative", qname:makeRelative(newDN("example.com")):toStringNoDot(), "WWW")
check("labels", qname:countLabels(), 3)
check("raw label", qname:getRawLabels()[2], "Example")
check("chopOff", qname:chopOff(), true)
check("chopOff mutates", tostring(qname), "Example.COM.")
check("escape", newDN("a\\046b"):toString(), "a\\.b.")
check("wire length", newDN("a.b"):wireLength(), 5)
check("canon", newDN("b.example"):canonCompare(newDN("a.b.example")), true)
raises("bad name", function() return newDN("a..b") end, "Found . in wrong position in DNSName a..b")
raises("string where DNSName", function() return newDN("a"):isPartOf("a") end, "from string to 7DNSName")
raises("no <", function() return newDN("a") < newDN("b") end)
raises("no ..", function() return "x" .. newDN("a") end)

-- QType
check("qtype code", newQType("aaaa"):getCode(), pdns.AAAA)
check("qtype name", tostring(newQType("#65")), "HTTPS")
check("qtype unknown", newQType("bogus"):getCode(), 0)
check("qtype ==", newQType("MX") == newQType("mx"), true)
check("qtype vs number", newQType("A") == 1, false)

-- ComboAddress, Netmask, NetmaskGroup
local ca = newCA("[2001:DB8::1]:53")
check("ca text", ca:toString(), "2001:db8::1")
check("ca port", ca:getPort(), 53)
check("ca ==", ca == newCA("[2001:db8::1]:53"), false)
check("ca equal", ca:equal(newCA("2001:db8::1")), true)
raises("bad ca", function() return newCA("nope") end, "Unable to convert presentation address 'nope'")
local nm = newNetmask("2001:db8::1/32")
check("netmask text", tostring(nm), "2001:db8::/32")
check("netmask match", nm:match("2001:db8:ffff::1"), true)
local nmg = newNMG({ "192.0.2.0/24", "!192.0.2.128/25" })
check("nmg positive", nmg:match(newCA("192.0.2.1")), true)
check("nmg negative", nmg:match(newCA("192.0.2.200")), false)

-- Records
local drr = newDRR(newDN("a.example"), "CNAME", 60, "b.example.")
check("drr content", drr:content(), "b.example")
check("drr zone form", drr:toString(), "b.example.")
check("drr qtype is a number", drr:qtype(), pdns.CNAME)
local dr = newDR(newDN("a.example"), "A", 60, "192.0.2.1", pdns.place.ANSWER)
check("dr type", dr.type, pdns.A)
check("dr ca", dr:getCA():toStringWithPort(), "192.0.2.1:53")
dr.ttl = 5
check("dr ttl write", dr.ttl, 5)

-- Globals
check("pdns_features", next(pdns_features), nil)
check("random range", pdnsrandom(3) < 3, true)

return "ok " .. count
