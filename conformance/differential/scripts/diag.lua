-- differential: the environment's helpers, value by value (zone diag.example, id 3).
--
-- `<case>.diag.example TXT` answers one TXT record: the values case <case> computes, one TXT
-- string each. So a difference between native lua2 and lua2pipe points at one helper.
-- Errors caught with pcall show as "error <lua type>: <message>"; the chunk's name, which
-- differs by design ([string "chunk"] natively, the file path in lua2pipe), is written "chunk".
-- `ctx.diag.example TXT` and `args.diag.example TXT` show what dns_lookup received.

local ZONE_ID = 3
local CASES = {}

local function case(name, fn) CASES[name] = fn end

local function text(value)
  if type(value) == "string" then return value end
  return tostring(value)
end

-- pcall a function; its result, or the error message with the chunk name normalised
local function try(fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then return "ok " .. text(err) end
  if type(err) == "string" then
    err = err:gsub('%[string "chunk"%]:', "chunk:"):gsub("^[^ :]*diag%.lua:", "chunk:")
    err = err:gsub("\n.*", "")
    return "error string: " .. err
  end
  return "error " .. type(err)
end

local function kind(value)
  return text(value):match("^(%a+)") or text(value)
end

-- DNSName -------------------------------------------------------------------------------------
case("dn-tostring", function() return tostring(newDN("A.b")), newDN("A.b."):toString(), newDN("x.Y.z"):toString() end)
case("dn-root", function() return newDN("."):toString(), newDN(""):toString(), newDN("."):toStringNoDot(), newDN("."):countLabels(), newDN("."):wireLength() end)
case("dn-nodot", function() return newDN("www.Example.com."):toStringNoDot(), newDN("a\\.b.c"):toStringNoDot() end)
case("dn-count", function() return newDN("a.b.c"):countLabels(), newDN("a.b"):wireLength(), newDN("a.b"):wirelength() end)
case("dn-rawlabels", function() return table.concat(newDN("a\\.b.c\\032d.e"):getRawLabels(), "|"), #newDN("."):getRawLabels() end)
case("dn-escape", function() return newDN("a b.c"):toString(), newDN("caf\195\169.x"):toString(), newDN("t\tab.x"):toString() end)
case("dn-escape-ddd", function() return newDN("\\065\\066c.x"):toString(), newDN("\\256a.x"):toString(), newDN("\\999.x"):toString(), newDN("\\.\\\\.x"):toString() end)
case("dn-escape-dot-start", function() return newDN(".foo\\.")  :toString() end)
-- a backslash after a NUL is a plain byte (DNSName's strchr stops at the NUL); an escaped label's
-- length is an unsigned char in the error message
case("dn-escape-nul", function() return newDN("a\0\\065"):toString(), newDN("a\0\\"):toString(), newDN("a\\065\0\\066"):toString() end)
case("dn-label-length", function() return try(newDN, ("\\065"):rep(130)) end)
case("dn-chopoff", function()
  local n = newDN("a.b.c")
  local r1 = n:chopOff()
  local s1 = n:toString()
  local root = newDN(".")
  return r1, s1, root:chopOff(), root:toString(), newDN("a"):chopOff()
end)
case("dn-ispartof", function()
  return newDN("www.Example.com"):isPartOf(newDN("example.COM")), newDN("xample.com"):isPartOf(newDN("ample.com")),
    newDN("a.b"):isPartOf(newDN(".")), newDN("example.com"):isPartOf(newDN("www.example.com")),
    newDN("example.com"):isPartOf(newDN("example.com"))
end)
case("dn-makerelative", function()
  local r = newDN("x.y.Example.com"):makeRelative(newDN("example.COM"))
  return r:toString(), r:toStringNoDot(), r:countLabels(), newDN("example.com"):makeRelative(newDN("example.com")):toString()
end)
case("dn-makerelative-outside", function()
  local r = newDN("www.example.org"):makeRelative(newDN("example.com"))
  return r:countLabels(), r:wireLength(), try(function() local s = r:toString(); return s end),
    try(function() local s = r:toStringNoDot(); return s end), r == newDN("www.example.org"):makeRelative(newDN("x"))
end)
case("dn-equal", function() return newDN("A.b"):equal("a.B."), newDN("a.b"):equal("a.c"), try(function() local x = newDN("a"):equal("a..b"); return x end) end)
case("dn-eq", function()
  return newDN("A.b") == newDN("a.B."), newDN("a.b") == newDN("a.c"), newDN("a") == "a", newDN("a") == 1,
    newDN("\\200") == newDN("\\200"), newDN("a\\066") == newDN("AB")
end)
case("dn-canon", function()
  local a, b = newDN("example.com"), newDN("a.example.com")
  return a:canonCompare(b), b:canonCompare(a), a:canonCompare(newDN("EXAMPLE.com")),
    newDN("z.x"):canonCompare(newDN("\\200.x")), newDN("a.b.x"):canonCompare(newDN("b.x"))
end)
case("dn-lt", function() return newDN("z.a"):__lt(newDN("a.b")), newDN("ab"):__lt(newDN("b")), newDN("a"):__lt(newDN("a")) end)
case("dn-operators", function()
  return try(function() local x = newDN("a") < newDN("b"); return x end),
    try(function() local x = "x" .. newDN("a"); return x end),
    try(function() local x = #newDN("a"); return x end)
end)
case("dn-err-dots", function() return try(newDN, "a..b"), try(function() local n = newDN(".a"); return n end), try(function() return newDN("a..") end) end)
case("dn-err-escape", function() return try(newDN, "a\\1b"), try(newDN, "ab\\") end)
case("dn-err-long", function()
  return try(newDN, string.rep("a", 64) .. ".com"), try(newDN, string.rep("a", 64) .. "\\.com"),
    try(newDN, string.rep("abcdefghi.", 26)), newDN(string.rep("abcdefgh.", 28) .. "ab"):wireLength()
end)
case("dn-number", function() return newDN(123):toString(), newDN(1.5):toString() end)
case("dn-err-args", function() return try(newDN, {}), try(newDN), try(function() local n = newDN("a", "b"); return n:toString() end) end)
case("dn-methods", function()
  local n = newDN("a")
  return type(n.toString), type(n.foo), type(n.toStringRootDot), type(n.isRoot),
    try(function() local x = n:foo(); return x end)
end)
case("dn-assign", function() return kind(try(function() local n = newDN("a"); n.x = 1; return "assigned" end)) end)

-- QType ---------------------------------------------------------------------------------------
case("qt-names", function()
  return newQType("a"):getName(), newQType("aaaa"):getCode(), newQType("Mx"):getName(), newQType("LUA"):getCode(),
    newQType("ALIAS"):getCode(), newQType("https"):getCode()
end)
case("qt-unknown", function()
  return newQType("BOGUS"):getCode(), newQType("TSIG"):getCode(), newQType("1"):getCode(), newQType(""):getCode(),
    newQType("#"):getCode(), newQType("ENT"):getCode(), newQType(1):getCode()
end)
case("qt-typen", function()
  return newQType("TYPE70000"):getCode(), newQType("type65280"):getName(), newQType("#99"):getCode(),
    newQType("TYPE1"):getName(), newQType("TYPE12x"):getCode(), newQType("#0x10"):getCode()
end)
case("qt-tostring", function()
  return tostring(newQType("MX")), tostring(newQType("TYPE0")), tostring(newQType("TYPE250")), newQType("TYPE250"):getName()
end)
case("qt-eq", function() return newQType("A") == newQType("a"), newQType("A") == newQType("NS"), newQType("A") == 1 end)

-- the pdns table ------------------------------------------------------------------------------
case("pdns-constants", function()
  return pdns.A, pdns.LUA, pdns.TSIG, pdns.NXDOMAIN, pdns.DROP, pdns.NOTZONE, pdns.place.ANSWER,
    pdns.place.ADDITIONAL, pdns.loglevels.Debug, pdns.loglevels.Emergency
end)
case("pdns-count", function()
  local n, tables = 0, 0
  for _, v in pairs(pdns) do n = n + 1; if type(v) == "table" then tables = tables + 1 end end
  local f = 0
  for _ in pairs(pdns_features) do f = f + 1 end
  return n, tables, f
end)
case("pdns-qtypes", function()
  local names = {}
  for k, v in pairs(pdns) do
    if type(v) == "number" and newQType(k):getCode() == v and v ~= 0 then names[#names + 1] = k .. "=" .. v end
  end
  table.sort(names)
  return #names, table.concat(names, " ", 1, 32), table.concat(names, " ", 33)
end)
case("pdns-qtype-names", function()
  local bad = {}
  for code = 0, 300 do
    local name = newQType("TYPE" .. code):getName()
    if name ~= "TYPE" .. code and newQType(name):getCode() ~= code then bad[#bad + 1] = name end
  end
  local named = 0
  for code = 0, 65535 do if newQType("#" .. code):getName():sub(1, 4) ~= "TYPE" then named = named + 1 end end
  return #bad, named
end)

-- ComboAddress --------------------------------------------------------------------------------
case("ca-v4", function()
  return newCA("127.1"):toString(), newCA("0x7f.1"):toString(), newCA("192.0.2.1"):isIPv4(), newCA("192.0.2.1"):isIPv6()
end)
case("ca-port", function()
  return newCA("1.2.3.4:53"):getPort(), newCA("1.2.3.4:53"):toStringWithPort(), newCA("1.2.3.4"):toStringWithPort(),
    newCA("[::1]:5353"):toStringWithPort(), newCA("1:2"):toStringWithPort(), newCA("[::1]:"):getPort()
end)
case("ca-v6", function()
  return newCA("2001:DB8:0:0::1"):toString(), newCA("2001:db8::1"):isIPv6(), newCA("fe80::1:53"):toString(),
    newCA("[2001:db8::2]"):toString(), newCA("::"):toStringWithPort()
end)
case("ca-mapped", function()
  local m = newCA("::ffff:1.2.3.4")
  return m:toString(), m:isMappedIPv4(), m:mapToIPv4():toString(), newCA("1.2.3.4"):isMappedIPv4(),
    newCA("[::ffff:1.2.3.4]:99"):mapToIPv4():toStringWithPort()
end)
case("ca-mapped-err", function() return try(function() local x = newCA("1.2.3.4"):mapToIPv4(); return x end) end)
case("ca-truncate", function()
  local a = newCA("1.2.3.255:53")
  local r = a:truncate(22)
  local b = newCA("2001:db8:ffff::1")
  b:truncate(36)
  local c = newCA("1.2.3.4")
  c:truncate(40)
  return r, a:toStringWithPort(), b:toString(), c:toString()
end)
case("ca-raw", function()
  local raw = newCA("1.2.3.4"):getRaw()
  return #raw, raw:byte(1), raw:byte(4), #newCA("::1"):getRaw()
end)
case("ca-equal", function()
  local a, b = newCA("1.2.3.4:53"), newCA("1.2.3.4")
  return a:equal(b), a == b, a == a, newCA("1.2.3.5"):equal(b)
end)
case("ca-err", function() return try(newCA, "bogus"), try(newCA, "1.2.3.4:70000"), try(newCA, " 1.2.3.4"), try(newCA, "[1.2.3.4]:53") end)
case("ca-fromraw", function()
  return newCAFromRaw("\1\2\3\4"):toString(), newCAFromRaw("abc"):toStringWithPort(),
    newCAFromRaw(string.rep("\0", 15) .. "\1", 53):toStringWithPort(), newCAFromRaw("\192\0\2\1", 80):getPort()
end)
case("ca-methods", function()
  local a = newCA("1.2.3.4")
  return type(a.toStringReversed), type(a.toStringNoInterface), type(a.getRaw), tostring(a)
end)

-- cas -----------------------------------------------------------------------------------------
case("cas", function()
  local s = newCAS()
  s:add("1.2.3.4:53")
  s:add({ "10.0.0.1", "::1" })
  s:add(newCA("192.0.2.1"))
  return s:check(newCA("1.2.3.4")), s:check(newCA("10.0.0.1:99")), s:check(newCA("::1")), s:check(newCA("10.0.0.2"))
end)
case("cas-err", function()
  local s = newCAS()
  return try(function() s:add("bogus"); return "added" end), try(function() local x = s:check("1.2.3.4"); return x end)
end)

-- Netmask -------------------------------------------------------------------------------------
case("nm-tostring", function()
  return newNetmask("1.2.3.4/24"):toString(), tostring(newNetmask("::1/64")), newNetmask("1.2.3.4"):toString(),
    newNetmask("2001:db8::1"):toString(), newNetmask("1.2.3.4/33"):toString(), newNetmask("0.0.0.0/0"):toString()
end)
case("nm-bits", function()
  local m = newNetmask("10.0.0.0/8")
  return m:getBits(), m:isIPv4(), m:isIpv4(), m:isIPv6(), m:isIpv6(), m:empty(), newNetmask("::/0"):getBits()
end)
case("nm-match", function()
  local m = newNetmask("10.0.0.0/8")
  return m:match("10.1.2.3"), m:match("11.0.0.1"), m:match("::1"), newNetmask("2001:db8::/32"):match("2001:db8:1::1"),
    try(function() local x = m:match("10.0.0.1:53"); return x end), try(function() local x = m:match(newCA("10.0.0.1")); return x end)
end)
case("nm-network", function()
  local m = newNetmask("192.0.2.77/28")
  return m:getNetwork():toString(), m:getMaskedNetwork():toStringWithPort(), kind(tostring(m:getNetwork()))
end)
case("nm-eq", function()
  return newNetmask("1.2.3.0/24") == newNetmask("1.2.3.4/24"), newNetmask("1.2.3.0/24") == newNetmask("1.2.3.0/25")
end)
case("nm-err", function()
  return try(newNetmask, "127.1/8"), try(newNetmask, "1.2.3.4/x"), try(newNetmask, "1.2.3.4/300"), try(newNetmask, "bogus")
end)

-- NetmaskGroup --------------------------------------------------------------------------------
case("nmg-match", function()
  local g = newNMG({ "!10.0.0.0/8", "10.1.0.0/16" })
  return g:match(newCA("10.1.0.1")), g:match(newCA("10.2.0.1")), g:match(newCA("192.0.2.1")), g:match(newCA("::ffff:10.1.0.1"))
end)
case("nmg-add", function()
  local g = newNMG()
  g:addMask("192.0.2.0/24")
  g:addMasks({ "2001:db8::/32", "!192.0.2.128/25" })
  return g:match(newCA("192.0.2.1")), g:match(newCA("192.0.2.200")), g:match(newCA("2001:db8::1"))
end)
case("nmg-err", function()
  return try(function() local g = newNMG({ "bogus" }); return g end),
    try(function() local x = newNMG({ "10.0.0.0/8" }):match("10.0.0.1"); return x end)
end)

-- DNSResourceRecord ---------------------------------------------------------------------------
case("drr", function()
  local r = newDRR(newDN("www.Example.com"), "CNAME", 300, "target.example.com.")
  return r:qname():toString(), r:qtype(), r:ttl(), r:content(), r:domainId(), r:auth(), r:qclass(), r:scopeMask(),
    r:lastModified(), r:disabled(), r:signttl(), tostring(r)
end)
case("drr-mx", function()
  local r = newDRR(newDN("a"), "MX", 300, "10 mx.example.com")
  local s = newDRR(newDN("a"), "MX", 300, "10 .")
  return r:content(), tostring(r), s:content(), tostring(newDRR(newDN("a"), "A", 1, "notanip"))
end)
case("drr-args", function()
  return newDRR(newDN("a"), "A", 300, "1.2.3.4", 5, 0):auth(), newDRR(newDN("a"), "A", 300, "1.2.3.4", 5, 7):auth(),
    newDRR(newDN("a"), "A", 300, "1.2.3.4", 5):domainId(), newDRR(newDN("a"), "A", -1, "1.2.3.4"):ttl(),
    newDRR(newDN("a"), "bogus", 1, "x"):qtype()
end)
case("drr-eq", function()
  local a = newDRR(newDN("A.b"), "TXT", 1, "Hello")
  local b = newDRR(newDN("a.B"), "TXT", 1, "hello")
  return a == b, a == newDRR(newDN("a.b"), "TXT", 2, "hello"), a:__lt(b), b:__lt(newDRR(newDN("b.b"), "TXT", 1, "a")),
    a:wildcardName():countLabels()
end)
case("drr-err", function()
  return try(newDRR, "a", "A", 1, "x"), try(function() local r = newDRR(newDN("a"), "A", 1, "x", 1, false); return r end)
end)

-- DNSRecord -----------------------------------------------------------------------------------
case("dr", function()
  local d = newDR(newDN("a.example"), "MX", 300, "10 mx.example.com", 1)
  local before = d:getContent()
  d:changeContent("20 mx2.example.com.")
  d.ttl = 60
  d.place = 9
  return d.name:toString(), d.type, d.ttl, d.place, before, d:getContent()
end)
case("dr-getca", function()
  local a = newDR(newDN("a"), "A", 1, "192.0.2.1", 1):getCA()
  return a:toStringWithPort(), newDR(newDN("a"), "MX", 1, "1 b.", 1):getCA() == nil,
    newDR(newDN("a"), "AAAA", 1, "2001:db8::1", 1):getCA():toStringWithPort()
end)
case("dr-err", function()
  return try(function() local d = newDR(newDN("a"), "A", 1, "not-an-ip", 1); return d end),
    try(function() local d = newDR(newDN("a"), "TXT", 1, "unquoted", 1); return d:getContent() end),
    try(function() local d = newDR(newDN("a"), "TYPE65280", 1, "\\# 2 abcd", 1); return d:getContent() end),
    try(function() local d = newDR(newDN("a"), "A", 1, "1.2.3.4"); return d end)
end)
-- record content as pdns's own parsers read and print it, one content per value
local function content(rtype, text)
  return try(function() local d = newDR(newDN("a"), rtype, 1, text, 1); return d:getContent() end)
end
case("dr-text", function()
  return content("TXT", "two words"), content("TXT", "v=spf1 -all"), content("TXT", '"a\\065" "b c"'),
    content("TXT", '"open'), content("TXT", ""), content("TXT", '"x"y'), content("TXT", "caf\195\169"),
    content("SPF", "v=spf1 -all"), content("HINFO", "a b"), content("HINFO", '"a"')
end)
case("dr-text2", function()
  return content("CAA", "0 issue letsencrypt.org"), content("CAA", "0 issue letsencrypt"),
    content("NAPTR", '100 10 S SIP "" x.'), content("TXT", '"a\\"b" "c\\'),
    try(function() local d = newDR(newDN("a"), "TXT", 1, '"x"', 1); d:changeContent("y z"); return d:getContent() end)
end)
case("dr-ip", function()
  return content("A", "1.2.3.4 x"), content("A", "1.2.3"), content("A", "1.2.3.4."), content("A", "1.2.3.256"),
    content("A", "1.2.3.4,5"), content("A", "01.2.3.4"), content("A", "1..2.3"), content("A", "1.2.x.4"),
    content("A", "1.2.3.4\0"), content("AAAA", "zz"), content("AAAA", "2001:db8::g"), content("AAAA", "::FFFF:1.2.3.4")
end)
case("dr-fields", function()
  return content("MX", "x mx"), content("MX", "70000 mx"), content("MX", "10"), content("MX", "10 a..b"),
    content("MX", "99999999999999999999 a"), content("MX", "010\tmx"), content("SOA", "a b 4294967296 2 3 4 5"),
    content("CAA", "256 issue x"), content("CNAME", "a\rb"), content("MX", "1 " .. string.rep("a", 64))
end)
-- types without a pdns-faithful reader in lua2pipe (dnspython parses them)
case("dr-fallback", function()
  return content("DS", "1 2 3 abcd"), content("LOC", "1 2 3 N 4 5 6 E 7m"), content("TYPE65280", "abcd")
end)

-- other globals and the runtime ----------------------------------------------------------------
case("globals", function()
  return type(newDN), type(pdnslog), type(resolve), type(pdnsrandom), type(setfenv), type(loadstring),
    type(newCAFromRaw), type(require), type(io), type(os.time)
end)
case("globals-internal", function()
  return type(newDNSPacket), type(dupDNSPacket), type(e5ddced079fc405aa4937b386ca387d2)
end)
case("runtime", function() return _VERSION, type(jit), type(bit), type(table.unpack), type(unpack) end)
case("runtime-jit", function() return jit and jit.version or "none" end)
-- objects: what type() and tostring() say
case("types", function()
  return type(newDN("a")), type(newQType("A")), type(newCA("1.2.3.4")), type(newCAS()), type(newNetmask("1.2.3.4")),
    type(newNMG()), type(newDRR(newDN("a"), "A", 1, "1.2.3.4")), type(newDR(newDN("a"), "A", 1, "1.2.3.4", 1)),
    kind(tostring(newCAS())), kind(tostring(newNMG())), kind(tostring(newDR(newDN("a"), "A", 1, "1.2.3.4", 1)))
end)
-- raw access and iteration on one object: what pairs/next/ipairs/rawget/rawset/rawequal/#/..
-- say of it (identical natively and in lua2pipe only if it is a userdata like native's)
local function raw_ops(v)
  return try(function() local x = pairs(v); return type(x) end), try(next, v), try(function() return type(ipairs(v)) end),
    try(rawget, v, "x"), try(rawset, v, "x", 1), try(rawequal, v, v), try(function() local x = #v; return x end),
    try(function() local x = v .. ""; return x end)
end
case("raw-dn", function() return raw_ops(newDN("a")) end)
case("raw-qt", function() return raw_ops(newQType("A")) end)
case("raw-ca", function() return raw_ops(newCA("1.2.3.4")) end)
case("raw-cas", function() return raw_ops(newCAS()) end)
case("raw-nm", function() return raw_ops(newNetmask("10.0.0.0/8")) end)
case("raw-nmg", function() return raw_ops(newNMG()) end)
case("raw-drr", function() return raw_ops(newDRR(newDN("a"), "A", 1, "1.2.3.4")) end)
case("raw-dr", function() return raw_ops(newDR(newDN("a"), "A", 1, "1.2.3.4", 1)) end)
case("metatables", function()
  local m = getmetatable(newDN("a"))
  return m ~= getmetatable(newDN("a")), type(m), type(m.__index), type(m.__tostring), type(m.__eq), type(m._typeid)
end)
-- conversion errors of optional and table parameters (their mangled C++ type names)
case("err-optional", function()
  return try(function() local x = newDRR(newDN("a"), "A", 1, "x", "five"); return x end),
    try(function() local x = newCAFromRaw("abcd", "x"); return x end),
    try(function() local x = pdnsrandom("x"); return x end),
    try(function() local x = pdnslog("x", "y"); return x end),
    try(function() local x = newNMG(5); return x end)
end)
case("err-tables", function()
  local g = newNMG()
  return try(function() g:addMasks("10.0.0.0/8"); return "added" end),
    try(function() g:addMasks({ 5, {} }); return "added" end),
    try(function() local s = newCAS(); s:add(5); return "added" end),
    try(function() local s = newCAS(); s:add({}); return "added" end),
    try(function() local s = newCAS(); s:add(true); return "added" end)
end)
case("numbers", function()
  return tostring(1 / 3), tostring(2 ^ 53), tostring(1e300), tostring(-0.0), tostring(10 / 2), string.format("%d", 3)
end)
case("random", function() return pdnsrandom(1), pdnsrandom(0), type(pdnsrandom(10)), pdnsrandom(10) < 10 end)
case("pdnslog", function() return pdnslog("diag.lua: pdnslog works", pdns.loglevels.Info), try(pdnslog) end)
case("errors", function()
  return try(function() error("plain") end), try(function() error("no position", 0) end),
    try(function() error({ code = 1 }) end), try(function() local x = nil; return x.y end)
end)

local function escape(value)
  return (value:gsub('[%c"\\\128-\255]', function(c)
    if c == '"' or c == "\\" then return "\\" .. c end
    return string.format("\\%03d", c:byte())
  end))
end

local function strings(values, n)
  local out = {}
  for i = 1, n do
    local s = text(values[i])
    repeat
      out[#out + 1] = '"' .. escape(s:sub(1, 200)) .. '"'
      s = s:sub(201)
    until s == ""
  end
  return table.concat(out, " ")
end

local function run_case(name)
  local fn = CASES[name]
  local function pack(...) return select("#", ...), { ... } end
  local n, results = pack(pcall(fn))
  if not results[1] then return strings({ "case failed: " .. try(fn) }, 1) end
  table.remove(results, 1)
  return strings(results, n - 1)
end

local function ctx_text(ctx)
  local keys = {}
  for k, v in pairs(ctx) do keys[#keys + 1] = text(k) .. "=" .. text(v) .. " (" .. type(v) .. ")" end
  table.sort(keys)
  return strings({ "#ctx=" .. #ctx, table.concat(keys, " ") }, 2)
end

local SOA = "ns.diag.example. hostmaster.diag.example. 1 3600 600 86400 60"

function dns_lookup(qtype, qname, domain_id, ctx)
  local code = qtype:getCode()
  local zone = newDN("diag.example")
  if not qname:isPartOf(zone) then return {} end
  local rows = {}
  local function row(rtype, content)
    if code == pdns.ANY or code == newQType(rtype):getCode() then
      rows[#rows + 1] = { name = qname, type = rtype, ttl = 60, content = content, domain_id = ZONE_ID }
    end
  end
  if qname == zone then
    row("SOA", SOA)
    row("NS", "ns.diag.example.")
    return rows
  end
  if qname:countLabels() ~= 3 then return rows end
  local label = qname:getRawLabels()[1]:lower()
  if label == "ns" then
    row("A", "192.0.2.53")
  elseif label == "ctx" then
    row("TXT", ctx_text(ctx))
  elseif label == "args" then
    row("TXT", strings({ tostring(qname), qtype:getName(), qtype:getCode(), domain_id, type(domain_id), type(ctx),
      qname:getRawLabels()[1], #ctx }, 8))
  elseif label == "argtypes" then
    row("TXT", strings({ type(qname), type(qtype) }, 2))
  elseif label == "rawargs" then
    local out = { raw_ops(qname) }
    for _, v in ipairs({ raw_ops(qtype) }) do out[#out + 1] = v end
    for _, v in ipairs({ raw_ops(ctx.source_address) }) do out[#out + 1] = v end
    for _, v in ipairs({ raw_ops(ctx.real_source_address) }) do out[#out + 1] = v end
    row("TXT", strings(out, #out))
  elseif CASES[label] then
    row("TXT", run_case(label))
  end
  return rows
end

function dns_list(target, domain_id)
  if not target:equal("diag.example") then return false end
  local rows = {
    { name = newDN("diag.example"), type = "SOA", ttl = 60, content = SOA, domain_id = ZONE_ID },
    { name = newDN("diag.example"), type = "NS", ttl = 60, content = "ns.diag.example.", domain_id = ZONE_ID },
    { name = newDN("ns.diag.example"), type = "A", ttl = 60, content = "192.0.2.53", domain_id = ZONE_ID },
  }
  -- two cases whose answers are the same in both implementations, the rest would only repeat them
  for _, name in ipairs({ "dn-tostring", "nm-tostring" }) do
    rows[#rows + 1] = { name = newDN(name .. ".diag.example"), type = "TXT", ttl = 60, content = run_case(name), domain_id = ZONE_ID }
  end
  return rows
end
