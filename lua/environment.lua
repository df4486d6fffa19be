--[[
lua2pipe: the Lua environment PowerDNS 4.7.3 gives lua2 backend scripts
(BaseLua4::prepareContext + AuthLua4::postPrepareContext), re-implemented in
pure Lua so it runs unchanged on LuaJIT 2.1 and PUC Lua 5.1 to 5.4.

Behaviour reference: pdns 4.7.3's pdns/lua-base4.cc (BaseLua4::prepareContext,
the bindings), pdns/lua-auth4.cc and the C++ types they bind (cited per type
below); argument conversion is ext/luawrapper/include/LuaContext.hpp's Reader
templates. Every result a script can observe is meant to match native pdns,
oddities included (for example `a < b` raises and only `a:__lt(b)` works, two
ComboAddresses are never `==`, makeRelative outside the zone gives the EMPTY
name).

The chunk is called as chunk(content_chunk), content_chunk being lua/content.lua loaded (the record
content reader, called here with the helpers it shares), and returns a module table M:
  M.install(host, G)    install the globals into G (normally _G); host is a
                        table of callbacks: log(level, msg), resolve(qname,
                        code), optional parse_content(code, content) for
                        the record types this file has no reader for, and
                        random_seed (a number).
  M.DNSName.parse(text) / M.DNSName.is(v)
  M.QType.new(text) / .is(v) / .code_of(text) / .name_of(code)
  M.DNSName.parse raises the same message text newDN() raises,
  but without a file:line prefix (lua2pipe calls it, not a script).

Known differences from native pdns (a script can see these):
  * Objects are userdata with a metatable each (on LuaJIT and 5.1; tables whose metatable is
    themselves on Lua 5.2+, which has no newproxy), but that metatable also holds the object's
    state (_wire, _code, ...) and its __index is the type's methods table (native: a function,
    and a __gc). See "Objects" below.
  * pdnsrandom uses a seeded 48-bit LCG (host.random_seed), not a CSPRNG, and
    does not touch math.random's state.
  * IPv6 scopes: "%name" is kept verbatim and only accepted on link-local
    addresses (no if_nametoindex check); a numeric scope is printed as a
    number (native prints the interface name when one has that index).
  * newDNSPacket/dupDNSPacket are functions that raise (see GLOBALS).
  * Record content of types without a layout (lua/content.lua CONTENT_LAYOUTS) is parsed by
    host.parse_content (dnspython in lua2pipe), in its own words.
  * Numbers are converted the LuaJIT way on every Lua version: floats passed
    as integer parameters are truncated toward zero (Lua 5.3+ builds of pdns
    would reject non-integral floats), and a number read as a string is
    "%.14g" (5.0 is "5", as lua_tolstring gives it on LuaJIT).
  * The escaped-name parser's "cs=<n>" state numbers are reconstructed from
    the ragel grammar (0 = invalid byte, 2 = trailing "\", 3/4 = one/two
    digits of a \DDD escape); the rest of that message matches.

Extensions: where native raises an opaque PDNSException userdata (its message
cannot be read from Lua), this module raises a readable string instead,
prefixed with the caller's file:line like every other error:
  * newCA / cas:add / CA parsing:  Unable to convert presentation address '<s>'
  * newNetmask / nmg:addMask / Netmask:match:  Unable to convert '<s>' to a netmask
  * ComboAddress:mapToIPv4 on a non-mapped address:  ComboAddress can't be mapped
  * assigning an unknown field:  Unable to set field '<k>' of a <Type> object
  * tostring() of the empty DNSName raises the same string as toString():
    Caught exception: Attempt to print an unset dnsname
std::exception errors keep native's form "Caught exception: <what>".
]]

local content_chunk = ...
local M = {}

local byte, char, find, format, gsub, sub, rep =
  string.byte, string.char, string.find, string.format, string.gsub, string.sub, string.rep
local reverse, match, gmatch = string.reverse, string.match, string.gmatch
local concat = table.concat
local floor = math.floor
local unpack = table.unpack or unpack
local select, type, tostring, tonumber, getmetatable, error, pairs, pcall, rawget, rawequal =
  select, type, tostring, tonumber, getmetatable, error, pairs, pcall, rawget, rawequal
local setmetatable, rawset, debug = setmetatable, rawset, debug
local next = next -- walks a script's table as native's lua_next does (no __pairs)

local TWO16 = 65536
local TWO24 = 16777216
local TWO32 = 4294967296

-- The host callbacks (set by M.install).
local host = {}

---------------------------------------------------------------------------
-- Small byte-string helpers. Lua's string.lower/upper, %a/%w classes and `<`
-- on strings follow the C locale of the embedding process; pdns uses plain
-- ASCII rules and unsigned byte order, so we do the same explicitly.
---------------------------------------------------------------------------

local TO_LOWER, TO_UPPER = {}, {}
for c = 65, 90 do
  TO_LOWER[char(c)] = char(c + 32)
  TO_UPPER[char(c + 32)] = char(c)
end

-- Functions mapping the letters of `class` through `map` (find first: most names need nothing).
local ascii_lower, ascii_upper
do
  local function ascii_mapper(class, map)
    return function(s)
      if find(s, class) then
        s = gsub(s, class, map)
      end
      return s
    end
  end
  ascii_lower, ascii_upper = ascii_mapper("[A-Z]", TO_LOWER), ascii_mapper("[a-z]", TO_UPPER)
end

-- Strict "a < b" over unsigned bytes (std::string / lexicographical_compare).
local function bytes_less(a, b)
  if a == b then
    return false
  end
  local la, lb = #a, #b
  for i = 1, (la < lb and la or lb) do
    local x, y = byte(a, i), byte(b, i)
    if x ~= y then
      return x < y
    end
  end
  return la < lb
end

-- C++ code often sees only the text before the first NUL (string(p), c_str()).
local function cstr(s)
  local nul = find(s, "\0", 1, true)
  if nul then
    return sub(s, 1, nul - 1)
  end
  return s
end

-- isspace() in the C locale.
local SPACE = { [32] = true, [9] = true, [10] = true, [11] = true, [12] = true, [13] = true }

-- A cache of recent results: a plain table read with an index (a hit costs no call), and a store
-- function that empties it in place once it holds `max` entries, which bounds its memory without
-- tracking age (a working set under `max` stays cached). Returns the table and the store function.
local function bounded_cache(max)
  local entries, size = {}, 0
  local function store(key, value)
    if size >= max then
      for old in next, entries do
        entries[old] = nil -- clearing fields during next's traversal is allowed
      end
      size = 0
    end
    entries[key] = value
    size = size + 1
    return value
  end
  return entries, store
end
M.bounded_cache = bounded_cache

-- Bytes as big-endian numbers and back.
local function u32_to_bytes(v)
  return char(floor(v / TWO24) % 256, floor(v / TWO16) % 256, floor(v / 256) % 256, v % 256)
end

---------------------------------------------------------------------------
-- Errors and argument conversion (ext/luawrapper/include/LuaContext.hpp: the Reader templates, and
-- the callback wrapper that turns a C++ exception into a Lua error).
--
-- Implementation functions ("impls") never raise for a user error: they
-- return nil plus the full message, the usual Lua idiom. The bound function
-- the script calls turns that into error(msg, 2), so the message carries the
-- script's file:line exactly as LuaContext's luaL_where(1) does (and none for
-- a tail call or a call made straight from pcall).
---------------------------------------------------------------------------

local function std_error(what)
  return nil, "Caught exception: " .. what
end

-- Mangled C++ type names, as they appear in LuaContext's conversion errors. The bound classes (in
-- the global namespace) mangle as their name's length and name (Itanium <source-name>, "7DNSName"):
-- new_type derives theirs.
local CXX = {
  string = "NSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE",
  int = "i",
  uint = "j",
  uint16 = "t",
  cas = "St13unordered_setI12ComboAddressNS0_16addressOnlyHashENS0_17addressOnlyEqualESaIS0_EE",
}
-- vector<pair<unsigned, string>>. Itanium mangling abbreviates repeats as substitutions (S7_...),
-- whose numbers depend on what the enclosing type already named.
local function masks(pair_index, string_text)
  return "St6vectorISt4pairIj" .. string_text .. "ESaIS" .. pair_index .. "_EE"
end
CXX.masks = masks("7", CXX.string)
CXX.optional_masks = "N5boost8optionalI" .. masks("9", CXX.string) .. "EE"
CXX.cas_item = "N5boost7variantI" .. CXX.string .. "J12ComboAddress" .. masks("A", "S6_") .. "EEE"

---------------------------------------------------------------------------
-- Objects. LuaContext pushes every C++ value as a full userdata holding a copy, with a fresh
-- metatable per push (ext/luawrapper/include/LuaContext.hpp, Pusher<T>), so type() says
-- "userdata", `#`, `..`, `<`, pairs and rawget fail on it as on any userdata, and tostring without
-- a __tostring prints "userdata: 0x...". Ours are userdata too, each with its own metatable, and
-- that metatable is also the object's state: the fields native keeps in C++ (`_wire`, `_code`,
-- ...) sit next to the metamethods. A userdata has no other slot Lua can fill cheaply: a
-- weak-keyed side table costs about 1.5 us per object on LuaJIT (its collector walks weak tables
-- with userdata keys) and a userdata environment (debug.setfenv) 0.7 us; this costs 0.1 us.
--
-- The userdata itself: newproxy() on LuaJIT and 5.1 (pdns 4.7.3 links LuaJIT, so no native
-- behaviour exists on 5.2+ to match). Lua 5.2 removed newproxy and makes a full userdata only in C;
-- the one maker a script's state can reach is lupa pushing a Python object, which lupa releases in
-- its __gc only while the userdata keeps lupa's own metatable (lupa/_lupa.pyx py_object_gc ->
-- unpack_userdata tests for its POBJECT metatable). Measured with lupa 2.8: with our metatable in
-- its place, all of 600,000 such objects stayed alive on 5.3 (lupa's __gc as ours too); putting
-- lupa's metatable back in our __gc before calling lupa's frees every one, but an object then costs
-- 1.0-1.5 us on 5.2-5.4 against 0.12 us for a table (1.0-1.2 us with Python making them 256 at a
-- time), about 2.2 us more a question (qname and qtype) on a 9 us question on 5.4, and ties this
-- file to lupa's internals. So on 5.2+ an object stays a table whose metatable is itself (README
-- "Known differences").
---------------------------------------------------------------------------

local new_userdata -- new_userdata(mt): a fresh object whose metatable is mt (or none)
local OBJECT_KIND -- what type() says of an object
if newproxy then
  local newproxy, set_metatable = newproxy, debug.setmetatable
  OBJECT_KIND = "userdata"
  new_userdata = function(mt)
    local ud = newproxy()
    set_metatable(ud, mt)
    return ud
  end
else
  OBJECT_KIND = "table"
  new_userdata = function(mt)
    return setmetatable(mt or {}, mt)
  end
end
M.OBJECT_KIND = OBJECT_KIND

local function conversion_error(value, cxx)
  local kind = type(value)
  if kind == "table" and rawequal(getmetatable(value), value) then
    kind = "userdata" -- one of our objects on Lua 5.2+, as LuaContext would name it
  end
  return "Unable to convert parameter from " .. kind .. " to " .. cxx
end

-- An integer the way LuaContext's integral Reader reads one (ext/luawrapper/include/LuaContext.hpp:
-- lua_isnumber, then lua_tointeger, then a cast to the C type) under the LuaJIT pdns links: numbers
-- and numeric strings (LuaJIT's lj_strscan: "300", " 0x1F ", "1e2") are accepted and truncated
-- toward zero to a 64-bit integer; NaN, the infinities and anything outside the int64 range give
-- what x86-64's conversion gives, INT64_MIN, whose low 32 (or 16) bits are 0 (a TTL of 1e20 or
-- math.huge is 0 natively). Returns that integer, or nil for a value that is not a number.
-- The callers wrap it to the C type's width (wrap_integer). dispatch.lua reads rows with it too.
local INT64_MIN, INT64_LIMIT = -2 ^ 63, 2 ^ 63

local function to_integer(value)
  local n = tonumber(value)
  if n == nil then
    return nil
  elseif n >= 0 then
    if n < INT64_LIMIT then
      return floor(n)
    end
  elseif n >= INT64_MIN then
    return -floor(-n)
  end
  return INT64_MIN -- NaN fails every comparison above
end
M.to_integer = to_integer

-- An integer cast to a C type of 2^bits values (modulus), as the cast wraps it: unsigned, or signed
-- (two's complement). floor keeps the result an integer on Lua 5.3+, where -2^63 is a float.
local function wrap_integer(n, modulus, signed)
  n = floor(n % modulus)
  if signed and n >= modulus / 2 then
    n = n - modulus
  end
  return n
end
M.wrap_integer = wrap_integer

-- Converters: each returns the converted value, or nil and the C++ type name.
local ARG = {}

-- A number as native reads it into a string (lua_tolstring on LuaJIT: "%.14g"), on every Lua
-- version: tostring gives "5.0" for a float on 5.3 and later.
local function number_text(n)
  return format("%.14g", n)
end
M.number_text = number_text

function ARG.string(v)
  local t = type(v)
  if t == "string" then
    return v
  elseif t == "number" then
    return number_text(v)
  end
  return nil, CXX.string
end

local function integer_reader(modulus, signed, cxx)
  return function(v)
    local n = to_integer(v)
    if n == nil then
      return nil, cxx
    end
    return wrap_integer(n, modulus, signed)
  end
end

ARG.int = integer_reader(TWO32, true, CXX.int)
ARG.uint = integer_reader(TWO32, false, CXX.uint)
ARG.uint16 = integer_reader(TWO16, false, CXX.uint16)

-- A boost::optional<T> parameter reads like T, but errors name the optional type.
local function optional(reader, cxx)
  local name = "N5boost8optionalI" .. cxx .. "EE"
  return function(v)
    local value = reader(v)
    if value == nil then
      return nil, name
    end
    return value
  end
end

ARG.optional_int = optional(ARG.int, CXX.int)
ARG.optional_uint = optional(ARG.uint, CXX.uint)
ARG.optional_uint16 = optional(ARG.uint16, CXX.uint16)

-- Per type id: name, C++ name and registered equality. A type id is a userdata without metatable,
-- like native's _typeid (a light userdata: the C++ type_info).
local TYPES = {}

-- A new type id; cxx defaults to the mangled name of a class called `name`.
local function new_type(name, eq_fn, cxx)
  local typeid = new_userdata(nil)
  TYPES[typeid] = { name = name, cxx = cxx or #name .. name, eq = eq_fn }
  return typeid
end

-- One of our objects of the type `typeid`: its state (see "Objects" below), or nil and the C++
-- type name. LuaContext checks the userdata's own metatable, so a foreign userdata never passes
-- (nor does a metatable's __metatable field stand in for ours).
local function object_reader(typeid)
  local cxx = TYPES[typeid].cxx
  return function(v)
    if type(v) == OBJECT_KIND then
      local state = getmetatable(v)
      if type(state) == "table" and rawget(state, "_typeid") == typeid then
        return state
      end
    end
    return nil, cxx
  end
end

-- vector<pair<unsigned int, string>>: a table whose keys read as unsigned
-- ints and whose values read as strings. One bad entry fails the whole table.
function ARG.masks(v)
  if type(v) ~= "table" then
    return nil, CXX.masks
  end
  local list, n = {}, 0
  for k, item in next, v do
    local key = ARG.uint(k)
    local str = ARG.string(item)
    if key == nil or str == nil then
      return nil, CXX.masks
    end
    n = n + 1
    list[n] = str
  end
  return list
end

local function arity_error(n, min, max)
  if n < min then
    return format("This function requires at least %d parameter(s)", min)
  end
  return format("This function requires at most %d parameter(s)", max)
end

-- impl's result, or its error message raised where the script called the bound function (level 3:
-- this function, the bound function, its caller). The bound functions call it, never tail-call it,
-- so that level is theirs; LuaJIT's compiled traces inline it (a one-parameter method costs 0.8 ns
-- either way; on PUC Lua 5.1-5.4 the call adds 10-20 ns).
local function result_of(result, err)
  if err then
    error(err, 3)
  end
  return result
end

-- bind(impl, min, kind1, kind2, ...) returns the function scripts call: it
-- checks the argument count (parameters after `min` are optional, and nil
-- reads as "absent" for those), converts each argument with its ARG reader,
-- calls impl and raises impl's error message at the caller's level.
-- One- and two-parameter functions (most methods) avoid the argument table.
local function bind(impl, min, ...)
  local kinds = { ... }
  local max = select("#", ...)
  local k1, k2 = kinds[1], kinds[2]

  if max <= 1 then
    return function(...)
      local n = select("#", ...)
      if n < min or n > max then
        error(arity_error(n, min, max), 2)
      end
      local a = ...
      if n == 1 and not (a == nil and min == 0) then
        local cxx
        a, cxx = k1(a)
        if a == nil then
          error(conversion_error((...), cxx), 2)
        end
      end
      local result = result_of(impl(a))
      return result
    end
  elseif max == 2 then
    return function(...)
      local n = select("#", ...)
      if n < min or n > max then
        error(arity_error(n, min, max), 2)
      end
      local a, b = ...
      local a0, b0 = a, b
      local cxx
      a, cxx = k1(a)
      if a == nil then
        error(conversion_error(a0, cxx), 2)
      end
      if n == 2 and not (b == nil and min < 2) then
        b, cxx = k2(b)
        if b == nil then
          error(conversion_error(b0, cxx), 2)
        end
      end
      local result = result_of(impl(a, b))
      return result
    end
  end

  return function(...)
    local n = select("#", ...)
    if n < min or n > max then
      error(arity_error(n, min, max), 2)
    end
    local args = { ... }
    for i = 1, n do
      local v = args[i]
      if not (v == nil and i > min) then
        local converted, cxx = kinds[i](v)
        if converted == nil then
          error(conversion_error(v, cxx), 2)
        end
        args[i] = converted
      end
    end
    local result = result_of(impl(unpack(args, 1, max)))
    return result
  end
end

-- Binds every function in `methods` for scripts (self is parameter 1, as in LuaContext, read by
-- self_reader): more[name] lists the readers of the method's further parameters, all required.
local function bind_methods(methods, self_reader, more)
  for name, fn in pairs(methods) do
    local readers = more[name] or {}
    methods[name] = bind(fn, 1 + #readers, self_reader, unpack(readers))
  end
end

-- Getters: a state field's value, and a value that never changes.
local function field(key)
  return function(self)
    return self[key]
  end
end

local function constant(value)
  return function()
    return value
  end
end

-- The type record and state of one of our objects, or nothing.
local function object_type(v)
  if type(v) == OBJECT_KIND then
    local state = getmetatable(v)
    if type(state) == "table" then
      return TYPES[rawget(state, "_typeid")], state
    end
  end
end

-- Every metatable shares this one __eq, as LuaContext's do: so Lua 5.1, LuaJIT and 5.2 (which
-- need the same handler on both sides) call it for any two of our objects, and native installs it
-- as the global e5ddced079fc405aa4937b386ca387d2 too. Like native it dispatches on the RIGHT
-- operand's type: no registered equality means false; a different left type raises.
local function shared_eq(a, b)
  local left, a_state = object_type(a)
  local right, b_state = object_type(b)
  if left == nil or right == nil then
    return false -- Lua 5.3+ also calls __eq when only one userdata has it
  end
  local eq = right.eq
  if eq == nil then
    return false
  end
  if left ~= right then
    error(conversion_error(a, right.cxx), 2)
  end
  return eq(a_state, b_state)
end

local function read_only(self, key)
  error(format("Unable to set field '%s' of a %s object", tostring(key), object_type(self).name), 2)
end

-- A __tostring that hands the object's state to fn.
local function state_tostring(fn)
  return function(self)
    return fn(getmetatable(self))
  end
end

-- An object's metatable holds its type's metamethods (index is __index, typeid _typeid) next to its
-- state. object_maker(typeid, index, tostring_fn, newindex) gives the constructor of a type's
-- objects: f(state) copies them into the table `state` and makes it an object (newindex defaults
-- to read_only). The objects made for a question, by lua2pipe (DNSName, QType) or by scripts
-- (ComboAddress, Netmask: examples/geo.lua makes both for every www question), are one table
-- constructor each instead (new_name, make_qtype, ca_state, netmask_state): copying costs 0.17 us
-- an object more (LuaJIT 2.1, a ComboAddress: the table grows twice), and even one constructor
-- shared with a variable key ([key] = value) 10 ns more.
local function object_maker(typeid, index, tostring_fn, newindex)
  local metamethods = {
    __index = index,
    __newindex = newindex or read_only,
    __tostring = tostring_fn,
    __eq = shared_eq,
    _typeid = typeid,
  }
  return function(state)
    for key, value in next, metamethods do
      state[key] = value
    end
    return new_userdata(state)
  end
end

-- The object of a state a parser read, or the parser's nil and error.
local function parsed_object(state, err)
  if state == nil then
    return nil, err
  end
  return new_userdata(state)
end

-- A method taking a text: read reads it (nil and the error when it cannot), fn(self, value)
-- answers.
local function text_method(read, fn)
  return function(self, text)
    local value, err = read(text)
    if value == nil then
      return nil, err
    end
    return fn(self, value)
  end
end

---------------------------------------------------------------------------
-- DNSName (pdns/dnsname.cc, DNSName's constructors and toString; bound in pdns/lua-base4.cc).
-- State: _wire, the wire form (length-prefixed labels and a final 0 byte), case preserved. The
-- EMPTY name has _wire == "".
---------------------------------------------------------------------------

local DNSName_methods = {}
local DNSName_id = new_type("DNSName") -- its equality is registered with the methods
local name_tostring -- the __tostring, defined with the methods

local ROOT_WIRE = "\0"

local function new_name(wire)
  return new_userdata({
    __index = DNSName_methods,
    __newindex = read_only,
    __tostring = name_tostring,
    __eq = shared_eq,
    _typeid = DNSName_id,
    _wire = wire,
  })
end

-- The fast path of DNSName(const char*, size_t): no backslash anywhere.
-- The label length counter is an unsigned char, so it wraps at 256; the name
-- limit counts the text consumed, separators included.
local function parse_plain(text)
  local parts, n = {}, 0
  local pos, len = 1, #text
  while pos <= len do
    if byte(text, pos) == 46 then
      return std_error("Found . in wrong position in DNSName " .. cstr(text))
    end
    local dot = find(text, ".", pos, true)
    local stop = dot and dot - 1 or len
    local label_len = stop - pos + 1
    if label_len % 256 > 63 then
      return std_error("label too long to append")
    end
    if (dot or len) > 254 then
      return std_error("name too long to append")
    end
    n = n + 1
    parts[n] = char(label_len % 256) .. sub(text, pos, stop)
    pos = stop + 2
  end
  parts[n + 1] = ROOT_WIRE
  return concat(parts)
end

-- Parser states of the escaped path (pdns's ragel machine
-- `label ('.' label)* '.'?`). The numbers of the non-final states are the
-- ones ragel reports as cs=<n> when the input ends inside an escape.
local S_START, S_ESCAPE, S_DIGIT1, S_DIGIT2 = 1, 2, 3, 4
local S_LABEL, S_NUMBER, S_DOT = 5, 6, 7

-- The escaped path (segmentDNSNameRaw in pdns/dnslabeltext.rl): \DDD is exactly three digits and
-- wraps modulo 256, \X is X (any byte). The label length is an unsigned char in 4.7.3: a label of
-- 256 to 319 bytes wraps past the check (the 255-byte name limit refuses it after).
local function parse_escaped(text)
  if byte(text, 1) == 46 then
    return ROOT_WIRE -- native quirk: ".foo\." silently gives the root
  end
  local wire, w = {}, 0 -- wire bytes, as one-character strings
  local len_at -- index in `wire` of the current label's length byte
  local label_len = 0
  local val = 0
  local state = S_START

  local function bad(msg)
    return std_error("Unable to parse DNS name '" .. cstr(text) .. "': " .. msg)
  end
  -- Closes the current label; nil + message if its (unsigned char) length is over 63.
  local function end_label()
    if label_len % 256 > 63 then
      return bad("invalid label length " .. label_len % 256)
    end
    wire[len_at] = char(label_len % 256)
    return true
  end

  for i = 1, #text do
    local c = byte(text, i)
    local digit = c >= 48 and c <= 57
    if state == S_START or state == S_DOT then
      if c == 46 then
        return bad("cs=0")
      end
      w = w + 1
      len_at, label_len = w, 0
      if c == 92 then
        state = S_ESCAPE
      else
        w, label_len, state = w + 1, 1, S_LABEL
        wire[w] = char(c)
      end
    elseif state == S_LABEL or state == S_NUMBER then
      if state == S_NUMBER then
        w, label_len = w + 1, label_len + 1
        wire[w] = char(val)
        val = 0
      end
      if c == 46 then
        local ok, err = end_label()
        if not ok then
          return nil, err
        end
        state = S_DOT
      elseif c == 92 then
        state = S_ESCAPE
      else
        w, label_len, state = w + 1, label_len + 1, S_LABEL
        wire[w] = char(c)
      end
    elseif state == S_ESCAPE then
      if digit then
        val, state = c - 48, S_DIGIT1
      else
        w, label_len, state = w + 1, label_len + 1, S_LABEL
        wire[w] = char(c)
      end
    elseif digit then -- S_DIGIT1 or S_DIGIT2
      val = (val * 10 + c - 48) % 256
      state = (state == S_DIGIT1) and S_DIGIT2 or S_NUMBER
    else
      return bad("cs=0")
    end
  end

  if state == S_NUMBER then
    w, label_len = w + 1, label_len + 1
    wire[w] = char(val)
  end
  if state == S_LABEL or state == S_NUMBER then
    local ok, err = end_label()
    if not ok then
      return nil, err
    end
  elseif state ~= S_DOT then
    return bad("cs=" .. state)
  end
  w = w + 1
  wire[w] = ROOT_WIRE
  local result = concat(wire)
  if #result > 255 then
    return std_error("name too long")
  end
  return result
end

-- Text -> wire. Recent results are cached: names repeat a lot (every
-- question's qname), and the wire string is immutable so sharing is safe.
local NAME_CACHE_MAX = 4096
local name_cache, cache_wire = bounded_cache(NAME_CACHE_MAX)

local function parse_wire(text)
  local wire = name_cache[text]
  if wire then
    return wire
  end
  local first = byte(text, 1)
  if first == nil or first == 0 or (first == 46 and (#text == 1 or byte(text, 2) == 0)) then
    return ROOT_WIRE
  end
  -- DNSName(const char*, size_t) (pdns/dnsname.cc) picks the escaped path with strchr(p, '\\'),
  -- which stops at the first NUL: a backslash after a NUL is a plain byte of the fast path.
  local err
  local backslash, nul = find(text, "\\", 1, true), find(text, "\0", 1, true)
  if backslash and not (nul and nul < backslash) then
    wire, err = parse_escaped(text)
  else
    wire, err = parse_plain(text)
  end
  if wire then
    cache_wire(text, wire)
  end
  return wire, err
end

-- Presentation escapes: 0x21-0x7E stay, except "." and "\"; others are \DDD.
local ESCAPES = {}
for c = 0, 255 do
  if c < 0x21 or c > 0x7E then
    ESCAPES[char(c)] = format("\\%03d", c)
  end
end
ESCAPES["."] = "\\."
ESCAPES["\\"] = "\\\\"
local NEEDS_CHECK = "[^0-9A-Za-z_%-]" -- cheap test before the gsub

local function wire_to_text(wire, trailing_dot)
  if wire == "" then
    return std_error("Attempt to print an unset dnsname")
  end
  if wire == ROOT_WIRE then
    return trailing_dot and "." or ""
  end
  local out, n, pos = {}, 0, 1
  local len = byte(wire, 1)
  while len > 0 do
    local label = sub(wire, pos + 1, pos + len)
    if find(label, NEEDS_CHECK) then
      label = gsub(label, ".", ESCAPES)
    end
    n = n + 1
    out[n] = label
    pos = pos + len + 1
    len = byte(wire, pos)
  end
  if trailing_dot then
    out[n + 1] = ""
  end
  return concat(out, ".")
end

-- Raw labels of a wire string, left to right.
local function wire_labels(wire)
  local labels, n, pos = {}, 0, 1
  local len = byte(wire, 1)
  while len and len > 0 do
    n = n + 1
    labels[n] = sub(wire, pos + 1, pos + len)
    pos = pos + len + 1
    len = byte(wire, pos)
  end
  return labels, n
end

-- Two names in wire form are equal ignoring ASCII case, as DNSName's == is.
local function wires_equal(a, b)
  return a == b or (#a == #b and ascii_lower(a) == ascii_lower(b))
end

local function names_equal(a, b)
  return wires_equal(a._wire, b._wire)
end

local function is_part_of(wire, parent)
  if wire == "" or parent == "" then
    return std_error("empty dnsnames aren't part of anything")
  end
  local plen = #parent
  local remaining = #wire
  if plen > remaining then
    return false
  end
  -- Walk label starts; the suffix that is exactly as long as parent must
  -- match it case-insensitively (label-aligned by construction).
  local pos = 1
  while remaining >= plen do
    if remaining == plen then
      local tail = sub(wire, pos)
      return wires_equal(tail, parent)
    end
    local len = byte(wire, pos)
    if len == 0 then
      break
    end
    pos = pos + len + 1
    remaining = remaining - len - 1
  end
  return false
end

-- DNSSEC canonical order (RFC 4034 6.1): labels from the right, each
-- compared case-insensitively as unsigned bytes; strict "less than".
local function canon_less(a, b)
  local la, na = wire_labels(a)
  local lb, nb = wire_labels(b)
  while true do
    if na == 0 and nb ~= 0 then
      return true
    end
    if nb == 0 then
      return false
    end
    local x, y = ascii_lower(la[na]), ascii_lower(lb[nb])
    if bytes_less(x, y) then
      return true
    end
    if bytes_less(y, x) then
      return false
    end
    na, nb = na - 1, nb - 1
  end
end

-- pdns's fast DNSName::operator<: reversed wire bytes, case-insensitive.
local function fast_name_less(a, b)
  return bytes_less(reverse(ascii_lower(a)), reverse(ascii_lower(b)))
end

-- Texts of recent names: scripts call toString on every question's qname.
local text_cache, cache_text = bounded_cache(NAME_CACHE_MAX)

function DNSName_methods.toString(self)
  local wire = self._wire
  local text = text_cache[wire]
  if text then
    return text
  end
  local err
  text, err = wire_to_text(wire, true)
  if not text then
    return nil, err
  end
  return cache_text(wire, text)
end

function DNSName_methods.toStringNoDot(self)
  return wire_to_text(self._wire, false)
end

function DNSName_methods.countLabels(self)
  local _, n = wire_labels(self._wire)
  return n
end

function DNSName_methods.wireLength(self)
  return #self._wire
end
DNSName_methods.wirelength = DNSName_methods.wireLength

function DNSName_methods.getRawLabels(self)
  return (wire_labels(self._wire))
end

function DNSName_methods.chopOff(self)
  local wire = self._wire
  local len = byte(wire, 1)
  if len == nil or len == 0 then
    return false
  end
  self._wire = sub(wire, len + 2)
  return true
end

function DNSName_methods.isPartOf(self, other)
  return is_part_of(self._wire, other._wire)
end

function DNSName_methods.makeRelative(self, zone)
  local wire = self._wire
  local inside, err = is_part_of(wire, zone._wire)
  if err then
    return nil, err
  end
  if not inside then
    return new_name("")
  end
  return new_name(sub(wire, 1, #wire - #zone._wire) .. ROOT_WIRE)
end

DNSName_methods.equal = text_method(parse_wire, function(self, wire)
  return wires_equal(self._wire, wire)
end)

function DNSName_methods.canonCompare(self, other)
  return canon_less(self._wire, other._wire)
end

function DNSName_methods.__lt(self, other)
  return fast_name_less(self._wire, other._wire)
end

local name_text = DNSName_methods.toString -- before the methods are bound for scripts

function name_tostring(self) -- tostring(name): the cached text, or the error raised
  local text, err = name_text(getmetatable(self))
  if not text then
    error(err, 2)
  end
  return text
end

TYPES[DNSName_id].eq = names_equal
ARG.DNSName = object_reader(DNSName_id)

-- Bind the methods for scripts (self is parameter 1, as in LuaContext).
do
  local dn = ARG.DNSName
  bind_methods(DNSName_methods, dn, {
    isPartOf = { dn },
    makeRelative = { dn },
    canonCompare = { dn },
    __lt = { dn },
    equal = { ARG.string },
  })
end

local function new_dn(text)
  local wire, err = parse_wire(text)
  if not wire then
    return nil, err
  end
  return new_name(wire)
end

M.DNSName = {
  parse = function(text)
    local name, err = new_dn(text)
    if not name then
      error(err, 0)
    end
    return name
  end,
  is = function(v)
    return ARG.DNSName(v) ~= nil
  end,
  -- the wire form of a DNSName (for dispatch.lua's rows)
  wire = function(name)
    return getmetatable(name)._wire
  end,
}

---------------------------------------------------------------------------
-- QType (pdns/qtype.cc, QType::chartocode and the names table). State: _code.
---------------------------------------------------------------------------

-- The 4.7.3 name table (64 names; TSIG is commented out there), laid out as a table.
-- stylua: ignore
local QTYPE_CODES = {
  A = 1, NS = 2, CNAME = 5, SOA = 6, MB = 7, MG = 8, MR = 9, PTR = 12, HINFO = 13, MINFO = 14,
  MX = 15, TXT = 16, RP = 17, AFSDB = 18, SIG = 24, KEY = 25, AAAA = 28, LOC = 29, SRV = 33,
  NAPTR = 35, KX = 36, CERT = 37, A6 = 38, DNAME = 39, OPT = 41, APL = 42, DS = 43, SSHFP = 44,
  IPSECKEY = 45, RRSIG = 46, NSEC = 47, DNSKEY = 48, DHCID = 49, NSEC3 = 50, NSEC3PARAM = 51,
  TLSA = 52, SMIMEA = 53, RKEY = 57, CDS = 59, CDNSKEY = 60, OPENPGPKEY = 61, CSYNC = 62,
  ZONEMD = 63, SVCB = 64, HTTPS = 65, SPF = 99, NID = 104, L32 = 105, L64 = 106, LP = 107,
  EUI48 = 108, EUI64 = 109, TKEY = 249, IXFR = 251, AXFR = 252, MAILB = 253, MAILA = 254,
  ANY = 255, URI = 256, CAA = 257, DLV = 32769, ADDR = 65400, ALIAS = 65401, LUA = 65402,
}
local QTYPE_NAMES = {}
for name, code in pairs(QTYPE_CODES) do
  QTYPE_NAMES[code] = name
end

local INT64_MAX_DIGITS = "9223372036854775807"

-- atoi() truncated to 16 bits: optional white space and sign, then digits.
-- glibc's atoi is strtol (clamped to the long range) cast to int.
local function atoi16(s)
  local pos = 1
  while SPACE[byte(s, pos)] do
    pos = pos + 1
  end
  local negative = false
  local c = byte(s, pos)
  if c == 45 or c == 43 then
    negative = c == 45
    pos = pos + 1
  end
  local digits = match(s, "^[0-9]+", pos)
  if not digits then
    return 0
  end
  digits = match(digits, "^0*(.*)$")
  if #digits > 19 or (#digits == 19 and digits > INT64_MAX_DIGITS) then
    -- Clamped to LONG_MAX/LONG_MIN, whose low 16 bits are 0xffff and 0.
    return negative and 0 or 65535
  end
  local value = 0
  for i = 1, #digits do
    value = (value * 10 + byte(digits, i) - 48) % TWO16
  end
  if negative then
    value = (TWO16 - value) % TWO16
  end
  return value
end

local qtype_cache, cache_qtype = bounded_cache(1024)

local function qtype_code_from_text(text)
  text = cstr(text)
  local upper = ascii_upper(text)
  local code = QTYPE_CODES[upper]
  if code then
    return code
  end
  if byte(text, 1) == 35 then -- "#n"
    return atoi16(sub(text, 2))
  end
  if sub(upper, 1, 4) == "TYPE" then
    return atoi16(sub(text, 5))
  end
  return 0
end

-- newQType's code for a text. Exact table names are one lookup; other
-- spellings ("aaaa", "TYPE65") are cached, bounded like the name cache.
local function qtype_code_of(text)
  local code = QTYPE_CODES[text] or qtype_cache[text]
  if code then
    return code
  end
  return cache_qtype(text, qtype_code_from_text(text))
end

local function qtype_name_of(code)
  return QTYPE_NAMES[code] or format("TYPE%d", code)
end

local QType_methods = {}

local QType_id = new_type("QType", function(a, b)
  return a._code == b._code
end)
ARG.QType = object_reader(QType_id)
local qtype_tostring = state_tostring(function(self)
  return qtype_name_of(self._code)
end)

local function make_qtype(code)
  return new_userdata({
    __index = QType_methods,
    __newindex = read_only,
    __tostring = qtype_tostring,
    __eq = shared_eq,
    _typeid = QType_id,
    _code = code,
  })
end

local function new_qtype(text)
  return make_qtype(qtype_code_of(text))
end

QType_methods.getCode = bind(function(self)
  return self._code
end, 1, ARG.QType)
QType_methods.getName = bind(function(self)
  return qtype_name_of(self._code)
end, 1, ARG.QType)

M.QType = {
  new = new_qtype,
  is = function(v)
    return ARG.QType(v) ~= nil
  end,
  code_of = qtype_code_of,
  name_of = qtype_name_of,
}

---------------------------------------------------------------------------
-- ComboAddress (pdns/iputils.hh; parsing: pdns/misc.cc makeIPv4sockaddr/makeIPv6sockaddr). State:
-- _family (4 or 6), _addr (4 or 16 bytes in network order), _port (number), _scope (IPv6 "%scope"
-- text, or nil).
---------------------------------------------------------------------------

local CA_methods = {}
local CA_id = new_type("ComboAddress")
local ca_tostring -- the __tostring, defined with the methods

-- The state of an address; the parsers return states, which new_userdata turns into objects for
-- scripts (a Netmask keeps its network as a state).
local function ca_state(family, addr, port, scope)
  return {
    __index = CA_methods,
    __newindex = read_only,
    __tostring = ca_tostring,
    __eq = shared_eq,
    _typeid = CA_id,
    _family = family,
    _addr = addr,
    _port = port or 0,
    _scope = scope,
  }
end

local function new_ca(family, addr, port, scope)
  return new_userdata(ca_state(family, addr, port, scope))
end

-- Parses a number the way strtoul(s, &end, 0) does from a digit at `pos`:
-- 0x hex (if a hex digit follows), leading 0 octal, else decimal. Returns the
-- value (nil if it cannot fit 32 bits) and the position after it.
local function strtoul0(s, pos)
  local digits, base, first
  if byte(s, pos) == 48 then
    local x = byte(s, pos + 1)
    if (x == 120 or x == 88) and find(s, "^[0-9A-Fa-f]", pos + 2) then
      digits = match(s, "^[0-9A-Fa-f]+", pos + 2)
      base, first = 16, pos + 2
    else
      digits = match(s, "^[0-7]+", pos)
      base, first = 8, pos
    end
  else
    digits = match(s, "^[0-9]+", pos)
    base, first = 10, pos
  end
  local after = first + #digits
  local significant = match(digits, "^0*(.*)$")
  local max_digits = (base == 16 and 8) or (base == 8 and 11) or 10
  if #significant > max_digits then
    return nil, after
  end
  local value = tonumber(significant == "" and "0" or significant, base)
  if value > 4294967295 then
    return nil, after
  end
  return value, after
end

-- glibc inet_aton: 1 to 4 parts ("a", "a.b", "a.b.c", "a.b.c.d"), each in
-- C notation; the last part fills the remaining bytes. Trailing white space
-- and whatever follows it is ignored. Returns 4 bytes or nil.
local INET_ATON_MAX = { [0] = 4294967295, 16777215, 65535, 255 }

local function inet_aton(s)
  local parts, nparts = {}, 0
  local pos = 1
  local value, c
  while true do
    c = byte(s, pos)
    if c == nil or c < 48 or c > 57 then
      return nil
    end
    value, pos = strtoul0(s, pos)
    if value == nil then
      return nil
    end
    c = byte(s, pos)
    if c ~= 46 then
      break
    end
    if nparts > 2 or value > 255 then
      return nil
    end
    nparts = nparts + 1
    parts[nparts] = value
    pos = pos + 1
  end
  if c ~= nil and not SPACE[c] then
    return nil
  end
  if value > INET_ATON_MAX[nparts] then
    return nil
  end
  local word = value
  for i = 1, nparts do
    word = word + parts[i] * 256 ^ (4 - i)
  end
  return u32_to_bytes(word)
end

-- glibc inet_pton(AF_INET): exactly four decimal octets, no leading zeros.
local function inet_pton4(s)
  local a, b, c, d = match(s, "^([0-9]+)%.([0-9]+)%.([0-9]+)%.([0-9]+)$")
  if not a then
    return nil
  end
  local octets = { a, b, c, d }
  for i = 1, 4 do
    local o = octets[i]
    if (#o > 1 and byte(o, 1) == 48) or #o > 3 or tonumber(o) > 255 then
      return nil
    end
    octets[i] = tonumber(o)
  end
  return char(octets[1], octets[2], octets[3], octets[4])
end

local HEX_VALUE = {}
for i = 0, 9 do
  HEX_VALUE[48 + i] = i
end
for i = 0, 5 do
  HEX_VALUE[65 + i] = 10 + i
  HEX_VALUE[97 + i] = 10 + i
end

-- glibc inet_pton(AF_INET6). Returns 16 bytes or nil.
local function inet_pton6(s)
  local len = #s
  local pos = 1
  if len == 0 then
    return nil
  end
  if byte(s, 1) == 58 then -- a leading ":" must be "::"
    if byte(s, 2) ~= 58 then
      return nil
    end
    pos = 2
  end
  local out, n = {}, 0 -- output bytes
  local gap -- number of bytes before "::"
  local token = pos -- start of the current group
  local val, seen = 0, 0
  while pos <= len do
    local c = byte(s, pos)
    pos = pos + 1
    local digit = HEX_VALUE[c]
    if digit then
      if seen == 4 then
        return nil
      end
      val = val * 16 + digit
      seen = seen + 1
    elseif c == 58 then
      token = pos
      if seen == 0 then
        if gap then
          return nil
        end
        gap = n
      else
        if pos > len or n + 2 > 16 then
          return nil
        end
        out[n + 1], out[n + 2] = floor(val / 256), val % 256
        n, val, seen = n + 2, 0, 0
      end
    elseif c == 46 and n + 4 <= 16 then
      local v4 = inet_pton4(sub(s, token))
      if not v4 then
        return nil
      end
      out[n + 1], out[n + 2], out[n + 3], out[n + 4] = byte(v4, 1, 4)
      n, seen = n + 4, 0
      break
    else
      return nil
    end
  end
  if seen > 0 then
    if n + 2 > 16 then
      return nil
    end
    out[n + 1], out[n + 2] = floor(val / 256), val % 256
    n = n + 2
  end
  if gap then
    if n == 16 then
      return nil
    end
    local shift = 16 - n
    for i = n, gap + 1, -1 do
      out[i + shift] = out[i]
    end
    for i = gap + 1, gap + shift do
      out[i] = 0
    end
    n = 16
  end
  if n ~= 16 then
    return nil
  end
  return char(unpack(out, 1, 16))
end

local function is_link_local6(addr)
  local a, b = byte(addr, 1, 2)
  return (a == 0xfe and b >= 0x80 and b < 0xc0) or (a == 0xff and b % 16 == 2)
end

-- inet_pton, then (like pdns's numeric getaddrinfo fallback) "addr%scope".
local function parse_ipv6_scoped(s)
  local addr = inet_pton6(s)
  if addr then
    return addr
  end
  local pct = find(s, "%", 1, true)
  if not pct then
    return nil
  end
  addr = inet_pton6(sub(s, 1, pct - 1))
  local scope = sub(s, pct + 1)
  if not addr or scope == "" then
    return nil
  end
  if find(scope, "^[0-9]") then
    local digits = match(scope, "^[0-9]+$")
    if digits and #digits <= 10 and tonumber(digits) <= 4294967295 then
      local id = tonumber(digits)
      return addr, id ~= 0 and format("%d", id) or nil
    end
  end
  if is_link_local6(addr) then
    return addr, scope -- an interface name (not checked: we cannot see them)
  end
  return nil
end

-- makeIPv6sockaddr: "[v6]", "[v6]:port" ("[v6]:" is port 0), or bare v6.
-- Returns addr, port, scope or nil.
local function parse_ipv6_sockaddr(s)
  local port = 0
  local body = s
  if byte(s, 1) == 91 then -- "["
    local close = find(s, "]", 1, true)
    if not close then
      return nil
    end
    body = sub(s, 2, close - 1)
    if close ~= #s then
      if byte(s, close + 1) ~= 58 then
        return nil
      end
      local rest = sub(s, close + 2)
      if rest ~= "" then -- stoul: white space, sign, digits, then anything
        local sign, digits = match(rest, "^%s*([+-]?)([0-9]+)")
        if not digits then
          return nil
        end
        port = tonumber(digits)
        if sign == "-" and port ~= 0 then
          return nil
        end
      end
    end
  end
  local addr, scope = parse_ipv6_scoped(body)
  if not addr or port > 65535 then
    return nil
  end
  return addr, port, scope
end

-- makeIPv4sockaddr: inet_aton, with an optional ":port" (strtol, 0-65535).
local function parse_ipv4_sockaddr(s)
  if s == "" then
    return nil
  end
  local colon = find(s, ":", 1, true)
  if not colon then
    local addr = inet_aton(s)
    return addr, 0
  end
  local rest = sub(s, colon + 1)
  if rest == "" then
    return nil
  end
  local sign, digits = match(rest, "^%s*([+-]?)([0-9]+)$")
  if not digits then
    return nil
  end
  local port = #digits <= 6 and tonumber(digits) or TWO32
  if sign == "-" and port ~= 0 or port > 65535 then
    return nil
  end
  local addr = inet_aton(sub(s, 1, colon - 1))
  return addr, port
end

-- A reader of addresses from text (up to a NUL byte): IPv4 as parse_ipv4 reads it (bytes and a
-- port), else makeIPv6sockaddr's forms. It returns the address's state, or nil and the error
-- native would raise, the text between `before` and `after`. The ComboAddress constructor reads
-- IPv4 with makeIPv4sockaddr, Netmask's with inet_pton (pdns/iputils.hh, makeComboAddress).
local function address_reader(parse_ipv4, before, after)
  return function(text)
    local s = cstr(text)
    local addr, port = parse_ipv4(s)
    if addr then
      return ca_state(4, addr, port)
    end
    local scope
    addr, port, scope = parse_ipv6_sockaddr(s)
    if addr then
      return ca_state(6, addr, port, scope)
    end
    return nil, before .. text .. after
  end
end

local parse_ca =
  address_reader(parse_ipv4_sockaddr, "Unable to convert presentation address '", "'")

-- inet_ntop(AF_INET6) as glibc prints it: lower-case hex, the longest run
-- (first on a tie) of two or more zero groups as "::", and the dotted form
-- for ::a.b.c.d and ::ffff:a.b.c.d.
local function ipv6_to_text(addr)
  local words = {}
  for i = 0, 7 do
    local hi, lo = byte(addr, 2 * i + 1, 2 * i + 2)
    words[i] = hi * 256 + lo
  end
  local best_base, best_len, cur_base, cur_len = -1, 0, -1, 0
  for i = 0, 7 do
    if words[i] == 0 then
      if cur_base == -1 then
        cur_base, cur_len = i, 1
      else
        cur_len = cur_len + 1
      end
    elseif cur_base ~= -1 then
      if best_base == -1 or cur_len > best_len then
        best_base, best_len = cur_base, cur_len
      end
      cur_base = -1
    end
  end
  if cur_base ~= -1 and (best_base == -1 or cur_len > best_len) then
    best_base, best_len = cur_base, cur_len
  end
  if best_base ~= -1 and best_len < 2 then
    best_base = -1
  end

  local out, n = {}, 0
  local i = 0
  while i < 8 do
    if best_base ~= -1 and i >= best_base and i < best_base + best_len then
      if i == best_base then
        n = n + 1
        out[n] = ":"
      end
    else
      if i ~= 0 then
        n = n + 1
        out[n] = ":"
      end
      if
        i == 6
        and best_base == 0
        and (best_len == 6 or (best_len == 5 and words[5] == 0xffff))
      then
        n = n + 1
        out[n] = format("%d.%d.%d.%d", byte(addr, 13, 16))
        break
      end
      n = n + 1
      out[n] = format("%x", words[i])
    end
    i = i + 1
  end
  if best_base ~= -1 and best_base + best_len == 8 then
    n = n + 1
    out[n] = ":"
  end
  return concat(out)
end

local function ca_to_text(ca, with_scope)
  if ca._family == 4 then
    return format("%d.%d.%d.%d", byte(ca._addr, 1, 4))
  end
  local text = ipv6_to_text(ca._addr)
  if with_scope and ca._scope then
    text = text .. "%" .. ca._scope
  end
  return text
end

local function addresses_equal(a, b)
  return a._family == b._family and a._addr == b._addr
end

local function is_mapped_ipv4(ca)
  return ca._family == 6 and sub(ca._addr, 1, 12) == "\0\0\0\0\0\0\0\0\0\0\255\255"
end

-- Zero all but the first `bits` bits of a raw address (bits < its length).
local function truncate_bytes(addr, bits)
  local keep = floor(bits / 8)
  local partial = bits % 8
  local total = #addr
  local head = sub(addr, 1, keep)
  if keep == total then
    return addr
  end
  local b = byte(addr, keep + 1)
  local masked = b - b % (2 ^ (8 - partial))
  return head .. char(masked) .. rep("\0", total - keep - 1)
end

function CA_methods.toString(self)
  return ca_to_text(self, true)
end

function CA_methods.toStringWithPort(self)
  if self._family == 4 then
    return ca_to_text(self, true) .. format(":%d", self._port)
  end
  return "[" .. ca_to_text(self, true) .. format("]:%d", self._port)
end

function CA_methods.getPort(self)
  return self._port
end

function CA_methods.isIPv4(self)
  return self._family == 4
end

function CA_methods.isIPv6(self)
  return self._family == 6
end

function CA_methods.isMappedIPv4(self)
  return is_mapped_ipv4(self)
end

function CA_methods.mapToIPv4(self)
  if not is_mapped_ipv4(self) then
    return nil, "ComboAddress can't be mapped"
  end
  return new_ca(4, sub(self._addr, 13, 16), self._port)
end

function CA_methods.truncate(self, bits)
  if bits < #self._addr * 8 then
    self._addr = truncate_bytes(self._addr, bits)
  end
end

function CA_methods.getRaw(self)
  return self._addr
end

function CA_methods.equal(self, other)
  return addresses_equal(self, other)
end

ca_tostring = state_tostring(CA_methods.toString) -- before the methods are bound for scripts
ARG.ComboAddress = object_reader(CA_id)

do
  local ca = ARG.ComboAddress
  bind_methods(CA_methods, ca, { truncate = { ARG.uint }, equal = { ca } })
end

local function new_ca_from_raw(raw, port)
  if #raw == 4 then
    return new_ca(4, raw, port)
  elseif #raw == 16 then
    return new_ca(6, raw, port)
  end
  return new_ca(4, "\0\0\0\0", 0)
end

---------------------------------------------------------------------------
-- cas: a set of addresses, compared address-only (pdns/lua-base4.cc newCAS). State: _set, keyed by
-- family and raw address.
---------------------------------------------------------------------------

local CAS_methods = {}
local CAS_id = new_type("cas", nil, CXX.cas)

local cas_object = object_maker(CAS_id, CAS_methods)

local function cas_key(ca)
  return ca._family .. ca._addr
end

-- variant<string, ComboAddress, vector<pair<unsigned int, string>>>, tried
-- in that order (so a number reads as a string).
local function read_cas_item(v)
  local s = ARG.string(v)
  if s then
    return { s }
  end
  local ca = ARG.ComboAddress(v)
  if ca then
    return ca
  end
  local list = ARG.masks(v)
  if list then
    return list
  end
  return nil, CXX.cas_item
end

CAS_methods.add = bind(function(self, item)
  local set = self._set
  if item._typeid == CA_id then
    set[cas_key(item)] = true
    return
  end
  for i = 1, #item do -- strings: parse and insert one by one, as native
    local ca, err = parse_ca(item[i])
    if not ca then
      return nil, err
    end
    set[cas_key(ca)] = true
  end
end, 2, object_reader(CAS_id), read_cas_item)

CAS_methods.check = bind(function(self, ca)
  return self._set[cas_key(ca)] == true
end, 2, object_reader(CAS_id), ARG.ComboAddress)

---------------------------------------------------------------------------
-- Netmask (pdns/iputils.hh Netmask). State: _network (a ComboAddress, host bits zeroed), _bits
-- (0-255, not clamped to the family's size).
---------------------------------------------------------------------------

local Netmask_methods = {}
local Netmask_id = new_type("Netmask", function(a, b)
  local x, y = a._network, b._network
  return a._bits == b._bits and x._family == y._family and x._port == y._port and x._addr == y._addr
end)
local netmask_tostring -- the __tostring, defined with the methods

local netmask_address = address_reader(inet_pton4, "Unable to convert '", "' to a netmask")

-- 2^64 - n as decimal text, for std::stoull's wrap of "-n" (n < 10^12).
local function wrapped_negative(n)
  if n == 0 then
    return "0"
  end
  if n <= 73709551616 then
    return format("18446744%012.0f", 73709551616 - n)
  end
  return format("18446743%012.0f", 1073709551616 - n)
end

-- pdns::checked_stoi<uint8_t>: std::stoull, then a range check.
local function parse_mask_bits(s)
  local sign, digits = match(s, "^%s*([+-]?)([0-9]+)")
  if not digits then
    return std_error("stoull")
  end
  local significant = match(digits, "^0*(.*)$")
  if #significant > 12 then
    return std_error("stoull")
  end
  local n = tonumber(digits)
  local shown
  if sign == "-" and n ~= 0 then
    shown = wrapped_negative(n)
  elseif n > 255 then
    shown = format("%d", n)
  end
  if shown then
    return std_error(
      "checked_conv: source value "
        .. shown
        .. " is larger than target's maximum possible value 255"
    )
  end
  return n
end

local function mask_address(ca, bits)
  if bits < #ca._addr * 8 then
    return ca_state(ca._family, truncate_bytes(ca._addr, bits), ca._port, ca._scope)
  end
  return ca
end

-- A netmask's state (a NetmaskGroup keeps states; newNetmask turns one into an object).
local function netmask_state(network, bits)
  return {
    __index = Netmask_methods,
    __newindex = read_only,
    __tostring = netmask_tostring,
    __eq = shared_eq,
    _typeid = Netmask_id,
    _network = mask_address(network, bits),
    _bits = bits,
  }
end

local function parse_netmask(text)
  local slash = find(text, "/", 1, true)
  local addr_text = slash and sub(text, 1, slash - 1) or text
  local network, err = netmask_address(addr_text)
  if not network then
    return nil, err
  end
  local bits = network._family == 4 and 32 or 128
  if slash and slash < #text then
    bits, err = parse_mask_bits(sub(text, slash + 1))
    if not bits then
      return nil, err
    end
  end
  return netmask_state(network, bits)
end

local function netmask_matches(nm, ca)
  local net = nm._network
  if net._family ~= ca._family then
    return false
  end
  return mask_address(ca, nm._bits)._addr == net._addr
end

local function netmask_to_text(nm)
  return ca_to_text(nm._network, false) .. format("/%d", nm._bits)
end

function Netmask_methods.toString(self)
  return netmask_to_text(self)
end

function Netmask_methods.getBits(self)
  return self._bits
end

function Netmask_methods.isIPv4(self)
  return self._network._family == 4
end

function Netmask_methods.isIPv6(self)
  return self._network._family == 6
end

function Netmask_methods.empty()
  return false -- every Netmask a script can build has an address
end

function Netmask_methods.getNetwork(self)
  local net = self._network
  return new_ca(net._family, net._addr, net._port, net._scope)
end

Netmask_methods.match = text_method(netmask_address, netmask_matches)

netmask_tostring = state_tostring(netmask_to_text)

bind_methods(Netmask_methods, object_reader(Netmask_id), { match = { ARG.string } })
Netmask_methods.isIpv4 = Netmask_methods.isIPv4
Netmask_methods.isIpv6 = Netmask_methods.isIPv6
Netmask_methods.getMaskedNetwork = Netmask_methods.getNetwork

---------------------------------------------------------------------------
-- NetmaskGroup (pdns/iputils.hh NetmaskGroup). State: _masks, keyed by "<family><network>/<bits>"
-- with {netmask, positive}. The longest matching prefix decides; adding the same mask again
-- replaces its sign.
---------------------------------------------------------------------------

local NMG_methods = {}
local NMG_id = new_type("NetmaskGroup")

local function nmg_add(nmg, text)
  local positive = true
  if byte(text, 1) == 33 then -- "!"
    positive = false
    text = sub(text, 2)
  end
  local nm, err = parse_netmask(text)
  if not nm then
    return nil, err
  end
  local net = nm._network
  nmg._masks[net._family .. net._addr .. "/" .. nm._bits] = { nm, positive }
  return true
end

local function nmg_add_list(nmg, list)
  for i = 1, #list do
    local ok, err = nmg_add(nmg, list[i])
    if not ok then
      return nil, err
    end
  end
end

local function nmg_match(nmg, ca)
  local best_bits, result = -1, false
  for _, entry in pairs(nmg._masks) do
    local nm = entry[1]
    local bits = nm._bits
    if bits > best_bits and netmask_matches(nm, ca) then
      best_bits, result = bits, entry[2]
    end
  end
  return result
end

do
  local nmg = object_reader(NMG_id)
  NMG_methods.addMask = bind(function(self, text)
    local ok, err = nmg_add(self, text)
    if not ok then
      return nil, err
    end
  end, 2, nmg, ARG.string)
  NMG_methods.addMasks = bind(nmg_add_list, 2, nmg, ARG.masks)
  NMG_methods.match = bind(nmg_match, 2, nmg, ARG.ComboAddress)
end

local function read_optional_masks(v)
  local list = ARG.masks(v)
  if list then
    return list
  end
  return nil, CXX.optional_masks
end

local nmg_object = object_maker(NMG_id, NMG_methods)

local function new_nmg(list)
  local nmg = { _masks = {} }
  if list then
    local ok, err = nmg_add_list(nmg, list)
    if ok == nil and err then
      return nil, err
    end
  end
  return nmg_object(nmg)
end

---------------------------------------------------------------------------
-- DNSResourceRecord (pdns/dns.hh; content: pdns/dnsrecords.cc; newDRR: pdns/lua-base4.cc). State:
-- _qname (DNSName), _qtype (code), _ttl, _content, _domain_id, _auth.
---------------------------------------------------------------------------

local DRR_methods = {}
local DRR_id = new_type("DNSResourceRecord") -- its equality is registered with the methods

local drr_content, drr_zone_content
do
  local T_NS, T_CNAME, T_PTR, T_MX, T_SRV, T_DNAME = 2, 5, 12, 15, 33, 39
  local NAME_CONTENT = { [T_NS] = true, [T_CNAME] = true, [T_PTR] = true, [T_DNAME] = true }

  -- DNSResourceRecord::setContent: drop one trailing dot from name contents.
  function drr_content(qtype, content)
    if qtype == T_MX or qtype == T_SRV then
      if #content >= 2 and byte(content, -2) == 32 then
        return content
      end
    elseif not NAME_CONTENT[qtype] then
      return content
    end
    if #content >= 2 and byte(content, -1) == 46 then
      return sub(content, 1, -2)
    end
    return content
  end

  -- getZoneRepresentation: the content, with the dot put back on names.
  function drr_zone_content(self)
    local qtype, content = self._qtype, self._content
    if qtype == T_MX or qtype == T_SRV then
      local last
      for word in gmatch(content, "[^ \t\n]+") do
        last = word
      end
      if last == nil then
        return ""
      end
      if last ~= "." and byte(last, -1) ~= 46 then
        return content .. "."
      end
      return content
    elseif NAME_CONTENT[qtype] then
      if byte(content, -1) ~= 46 then
        return content .. "."
      end
    end
    return content
  end
end

local drr_object = object_maker(DRR_id, DRR_methods, state_tostring(drr_zone_content))

local function new_drr(qname_wire, qtype_code, ttl, content, domain_id, auth)
  return drr_object({
    _qname = qname_wire,
    _qtype = qtype_code,
    _ttl = ttl,
    _content = drr_content(qtype_code, content),
    _domain_id = domain_id or -1,
    _auth = auth,
  })
end

local function drr_equal(a, b)
  return a._qtype == b._qtype
    and a._ttl == b._ttl
    and wires_equal(a._qname, b._qname)
    and ascii_lower(a._content) == ascii_lower(b._content)
end

-- DNSResourceRecord::operator<: qname by the fast order, then content.
local function drr_less(a, b)
  if fast_name_less(a._qname, b._qname) then
    return true
  end
  if wires_equal(a._qname, b._qname) then
    return bytes_less(a._content, b._content)
  end
  return false
end

TYPES[DRR_id].eq = drr_equal

do
  local drr = object_reader(DRR_id)
  DRR_methods.toString = drr_zone_content
  DRR_methods.qname = function(self)
    return new_name(self._qname)
  end
  DRR_methods.wildcardName = function()
    return new_name("")
  end
  DRR_methods.content = field("_content")
  DRR_methods.lastModified = constant(0)
  DRR_methods.ttl = field("_ttl")
  DRR_methods.signttl = constant(0)
  DRR_methods.domainId = field("_domain_id")
  DRR_methods.qtype = field("_qtype")
  DRR_methods.qclass = constant(1)
  DRR_methods.scopeMask = constant(0)
  DRR_methods.auth = field("_auth")
  DRR_methods.disabled = constant(false)
  DRR_methods.__lt = drr_less
  bind_methods(DRR_methods, drr, { __lt = { drr } })
end

---------------------------------------------------------------------------
-- DNSRecord (pdns/lua-base4.cc newDR and its members). Members name/type/ttl/place read and write
-- through __index/__newindex (converted like native members); the content is read as pdns reads
-- it (lua/content.lua), or by host.parse_content for the types without a layout.
---------------------------------------------------------------------------

local DR_methods = {}
local DR_id = new_type("DNSRecord")

-- Record content (lua/content.lua): newDR and changeContent read it as pdns 4.7.3 does.
local parse_content = content_chunk({
  parse_wire = parse_wire,
  wire_to_text = wire_to_text,
  inet_pton6 = inet_pton6,
  ipv6_to_text = ipv6_to_text,
  std_error = std_error,
  cstr = cstr,
}).parse

local DR_members = {
  name = function(self)
    return new_name(self._name)
  end,
  type = field("_type"),
  ttl = field("_ttl"),
  place = field("_place"),
}

-- Member writes are converted like native's (DNSName, uint16, uint32, int).
local DR_writers = {
  name = {
    ARG.DNSName,
    function(self, v)
      self._name = v._wire
    end,
  },
  type = {
    ARG.uint16,
    function(self, v)
      self._type = v
    end,
  },
  ttl = {
    ARG.uint,
    function(self, v)
      self._ttl = v
    end,
  },
  place = {
    ARG.int,
    function(self, v)
      self._place = v
    end,
  },
}

local function dr_index(self, key)
  local member = DR_members[key]
  if member then
    return member(getmetatable(self))
  end
  return DR_methods[key]
end

local function dr_newindex(self, key, value)
  local writer = DR_writers[key]
  if not writer then
    read_only(self, key)
  end
  local converted, cxx = writer[1](value)
  if converted == nil then
    error(conversion_error(value, cxx), 2)
  end
  writer[2](getmetatable(self), converted)
end

local dr_object = object_maker(DR_id, dr_index, nil, dr_newindex)

local function new_dr(name, type_text, ttl, content, place)
  local code = qtype_code_of(type_text)
  local parsed, err = parse_content(code, content, host.parse_content)
  if not parsed then
    return nil, err
  end
  return dr_object({
    _name = name._wire,
    _type = code,
    _ttl = ttl,
    _content = parsed,
    _place = place,
  })
end

do
  local dr = object_reader(DR_id)
  DR_methods.getContent = bind(field("_content"), 1, dr)
  DR_methods.getCA = bind(function(self)
    local code = self._type
    if code == 1 or code == 28 then
      local addr = (code == 1 and inet_pton4 or inet_pton6)(self._content)
      if addr then
        return new_ca(code == 1 and 4 or 6, addr, 53)
      end
    end
    return nil
  end, 1, dr)
  DR_methods.changeContent = bind(function(self, content)
    local parsed, err = parse_content(self._type, content, host.parse_content)
    if not parsed then
      return nil, err
    end
    self._content = parsed
  end, 2, dr, ARG.string)
end

---------------------------------------------------------------------------
-- pdnsrandom: a 48-bit linear congruential generator (drand48's constants)
-- in plain arithmetic (no bit library on PUC 5.1), kept apart from
-- math.random so scripts that reseed that do not disturb it. State is two
-- 24-bit halves so every product stays exact in a double.
---------------------------------------------------------------------------

local rng_seed, pdnsrandom
do
  local rng_hi, rng_lo = 0x1234, 0xABCD33
  local A_HI, A_LO, C_INC = 0x5DE, 0xECE66D, 0xB

  function rng_seed(seed)
    seed = floor(tonumber(seed) or 0) % 281474976710656
    rng_hi, rng_lo = floor(seed / TWO24) % TWO24, floor(seed % TWO24)
  end

  local function rng_next() -- uniform in [0, 1)
    local lo = rng_lo * A_LO + C_INC
    local hi = rng_hi * A_LO + rng_lo * A_HI + floor(lo / TWO24)
    rng_lo = lo % TWO24
    rng_hi = hi % TWO24
    return (rng_hi * TWO24 + rng_lo) / 281474976710656
  end

  function pdnsrandom(maximum)
    if maximum == nil then
      maximum = 0xffffffff
    end
    if maximum < 2 then
      return 0
    end
    return floor(rng_next() * maximum)
  end
end

---------------------------------------------------------------------------
-- Logging, resolve and the pdns table.
---------------------------------------------------------------------------

local LOG_WARNING, LOG_ERROR = 4, 3

local function pdnslog(msg, level)
  host.log(level or LOG_WARNING, msg)
end

local function print_to_log(...)
  local parts = {}
  for i = 1, select("#", ...) do
    parts[i] = tostring((select(i, ...)))
  end
  -- no level: native print goes to pdns's stdout, shown whatever the loglevel
  host.log(nil, concat(parts, "\t"))
end

-- resolve(qname, qtype): the host does the stub query and hands back
-- {name=, type=, ttl=, content=[, auth=]} rows; each becomes a DRR. Native
-- returns an empty table when the query fails, so do we (and log why).
local function resolve(qname, qtype)
  local wire, err = parse_wire(qname)
  if not wire then
    return nil, err
  end
  local result = {}
  local ok, rows = pcall(host.resolve, qname, qtype)
  if not ok then
    host.log(LOG_ERROR, "resolve(" .. qname .. ", " .. qtype .. ") failed: " .. tostring(rows))
    return result
  end
  if rows == nil then
    return result
  end
  local i = 1
  local row = rows[i]
  while row ~= nil do
    local name = parse_wire(row.name) or ROOT_WIRE
    local auth = row.auth
    if auth == nil then
      auth = true
    end
    result[i] = new_drr(
      name,
      floor(tonumber(row.type) or 0),
      floor(tonumber(row.ttl) or 0),
      row.content or "",
      nil,
      auth
    )
    i = i + 1
    row = rows[i]
  end
  return result
end

local function build_pdns_table()
  local pdns = {
    NOERROR = 0,
    FORMERR = 1,
    SERVFAIL = 2,
    NXDOMAIN = 3,
    NOTIMP = 4,
    REFUSED = 5,
    YXDOMAIN = 6,
    YXRRSET = 7,
    NXRRSET = 8,
    NOTAUTH = 9,
    NOTZONE = 10,
    DROP = -2,
    place = { QUESTION = 0, ANSWER = 1, AUTHORITY = 2, ADDITIONAL = 3 },
    loglevels = {
      Emergency = 0,
      Alert = 1,
      Critical = 2,
      Error = 3,
      Warning = 4,
      Notice = 5,
      Info = 6,
      Debug = 7,
    },
  }
  for name, code in pairs(QTYPE_CODES) do
    pdns[name] = code
  end
  return pdns
end

---------------------------------------------------------------------------
-- Installation.
---------------------------------------------------------------------------

local GLOBALS = {
  newDN = bind(new_dn, 1, ARG.string),
  newQType = bind(new_qtype, 1, ARG.string),
  newCA = bind(function(text)
    return parsed_object(parse_ca(text))
  end, 1, ARG.string),
  newCAFromRaw = bind(new_ca_from_raw, 1, ARG.string, ARG.optional_uint16),
  newCAS = bind(function()
    return cas_object({ _set = {} })
  end, 0),
  newNetmask = bind(function(text)
    return parsed_object(parse_netmask(text))
  end, 1, ARG.string),
  newNMG = bind(new_nmg, 0, read_optional_masks),
  newDRR = bind(function(qname, qtype, ttl, content, domain_id, auth)
    local auth_flag = true
    if auth ~= nil then
      auth_flag = auth ~= 0
    end
    return new_drr(qname._wire, qtype_code_of(qtype), ttl, content, domain_id, auth_flag)
  end, 4, ARG.DNSName, ARG.string, ARG.uint, ARG.string, ARG.optional_int, ARG.optional_int),
  newDR = bind(new_dr, 5, ARG.DNSName, ARG.string, ARG.uint, ARG.string, ARG.int),
  pdnslog = bind(pdnslog, 1, ARG.string, ARG.optional_int),
  pdnsrandom = bind(pdnsrandom, 0, ARG.optional_uint),
  resolve = bind(resolve, 2, ARG.string, ARG.uint16),
  -- LuaContext installs its shared __eq as this global (ext/luawrapper/include/LuaContext.hpp,
  -- LUACONTEXT_GLOBAL_EQ); ours is the __eq every object's metatable holds.
  e5ddced079fc405aa4937b386ca387d2 = shared_eq,
}

-- newDNSPacket and dupDNSPacket (pdns/lua-auth4.cc AuthLua4::postPrepareContext) make and copy
-- pdns_server's own C++ DNSPacket, whose methods parse and write wire packets with pdns's code. No
-- lua2 hook takes or returns one, and pdns's object cannot cross the pipe, so they are present (a
-- script testing for the global sees a function, as natively) and raise saying so.
for _, name in ipairs({ "newDNSPacket", "dupDNSPacket" }) do
  GLOBALS[name] = function()
    error(
      name
        .. " is not available through lua2pipe: a DNSPacket is pdns_server's own packet object, "
        .. "which lives in pdns's process, not in the coprocess",
      2
    )
  end
end

function M.install(host_callbacks, G)
  host = host_callbacks or {}
  G = G or _G
  if host.random_seed ~= nil then
    rng_seed(host.random_seed)
  else
    rng_seed(os.time() * 1000 + floor(os.clock() * 1000))
  end
  for name, fn in pairs(GLOBALS) do
    G[name] = fn
  end
  G.print = print_to_log
  G.pdns = build_pdns_table()
  G.pdns_features = {}
  return G
end

---------------------------------------------------------------------------
-- The finalizer guard. M.guard_finalizers(G, failed) wraps G.setmetatable, debug.setmetatable and
-- newproxy for the script (lua2pipe calls it after dispatch.lua captured the originals; this file's
-- objects carry no __gc).
-- Runs each __gc metamethod the script sets in a pcall and logs its error. Unguarded, a raising
-- finalizer breaks serving on PUC Lua, which raises finalizer errors at whatever allocation ran
-- the collector (measured with 3,000 raising finalizers): 5.3 aborts ("PANIC: unprotected error
-- in call to Lua API (error in __gc metamethod ...)", exit 134) when that allocation is one of
-- lupa's unprotected API calls; on 5.2 and 5.3 every later question fails while finalizers are
-- pending, on 5.1 (newproxy) the question that collects. LuaJIT prints "ERROR in finalizer" on
-- stderr itself and 5.4 drops the error silently; guarded, every runtime logs it the same way.
-- Covered: setmetatable and debug.setmetatable with a __gc function, and newproxy(true) whose
-- metatable gets a __gc; a __gc assigned into a metatable already set is not.
---------------------------------------------------------------------------

function M.guard_finalizers(G, failed)
  local set, debug_set, make_proxy = setmetatable, debug.setmetatable, newproxy
  local guards = set({}, { __mode = "k" }) -- guarding function -> the script's own
  local function guard(finalizer)
    local function guarded(object)
      local ok, why = pcall(finalizer, object)
      if not ok then
        local shown, text = pcall(tostring, why)
        pcall(failed, shown and type(text) == "string" and text or "(an error object)")
      end
    end
    guards[guarded] = finalizer
    return guarded
  end
  local function guard_metatable(mt)
    local finalizer = type(mt) == "table" and rawget(mt, "__gc")
    if type(finalizer) == "function" and not guards[finalizer] then
      rawset(mt, "__gc", guard(finalizer))
    end
    return mt
  end
  G.setmetatable = function(t, mt)
    return set(t, guard_metatable(mt))
  end
  -- the debug table is shared with the script (and read-only to luacheck's standard globals)
  debug.setmetatable = function(v, mt) -- luacheck: ignore 122
    return debug_set(v, guard_metatable(mt))
  end
  if make_proxy then
    local guarding = {
      __newindex = function(mt, key, value)
        rawset(mt, key, key == "__gc" and type(value) == "function" and guard(value) or value)
      end,
    }
    G.newproxy = function(meta)
      local proxy = make_proxy(meta)
      if meta == true then
        set(getmetatable(proxy), guarding)
      end
      return proxy
    end
  end
end

return M
