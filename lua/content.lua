--[[
lua2pipe: record content the way pdns 4.7.3 reads and prints it (DNSRecordContent::mastermake,
then getZoneRepresentation), for newDR and DNSRecord:changeContent (pdns/lua-base4.cc):
pdns/rcpgenerator.cc RecordTextReader (the reading, with its error texts) and RecordTextWriter (the
printing), over each type's fields as pdns/dnsrecords.cc lists them (boilerplate_conv).

The chunk is called as chunk(helpers) by environment.lua, with the helpers it shares:
  helpers.parse_wire(text)         DNSName text -> wire, or nil and DNSName's error
  helpers.wire_to_text(wire, dot)  wire -> DNSName::toString
  helpers.inet_pton6(text)         glibc inet_pton(AF_INET6): 16 bytes or nil
  helpers.ipv6_to_text(raw)        glibc inet_ntop(AF_INET6)
  helpers.std_error(what)          nil, "Caught exception: <what>" (a std::exception through LuaContext)
  helpers.cstr(s)                  the text before the first NUL byte
It returns a module table M:
  M.parse(code, content, host_parse)  the content as pdns prints it, or nil and the message native
                                      raises. Types without a layout (CONTENT_LAYOUTS) go to
                                      host_parse(code, content) (lua2pipe.py: dnspython), whose
                                      error texts and strictness differ (README "Known
                                      differences"); without host_parse the content is kept as is.
]]

local helpers = ...

local byte, char, find, match, sub = string.byte, string.char, string.find, string.match, string.sub
local concat = table.concat
local pcall, tonumber, tostring = pcall, tonumber, tostring
local parse_wire, wire_to_text = helpers.parse_wire, helpers.wire_to_text
local inet_pton6, ipv6_to_text = helpers.inet_pton6, helpers.ipv6_to_text
local std_error, cstr = helpers.std_error, helpers.cstr

local TWO32 = 4294967296

local M = {}

-- Every field reader takes the reader state r = { s = text, p = position, n = length } and returns
-- the field as pdns prints it, or nil and the message native raises.
local CONTENT_ERROR = "Caught exception: Parsing record content (try 'pdnsutil check-zone'): "
local DNS_SPACE = { [32] = true, [9] = true, [10] = true, [13] = true } -- dns_isspace (pdns/dnsname.hh)

-- RecordTextReader::skipSpaces: white space may not run to the end, a field must follow.
local function skip_spaces(r)
  local p, s = r.p, r.s
  while DNS_SPACE[byte(s, p)] do
    p = p + 1
  end
  r.p = p
  if p > r.n then
    return CONTENT_ERROR .. "missing field at the end of record content '" .. s .. "'"
  end
end

-- A message pointing at position p of the content s, counted from 0 as pdns counts it.
local function position_error(what, p, preposition, s)
  return nil,
    CONTENT_ERROR .. what .. " at position " .. (p - 1) .. " " .. preposition .. " '" .. s .. "'"
end

-- A field that skips the white space before it first, as every RecordTextReader::xfr* but xfrText
-- does; read(r) reads the rest.
local function spaced(read)
  return function(r)
    local err = skip_spaces(r)
    if err then
      return nil, err
    end
    return read(r)
  end
end

-- xfr32BitInt and its 16 and 8 bit forms: decimal digits read by std::stoull (through
-- pdns::checked_stoi<uint32_t>), then a range check per width.
local UINT64_MAX_TEXT = "18446744073709551615"

local function uint_reader(bits)
  local limit = 2 ^ bits
  return spaced(function(r)
    local s, p = r.s, r.p
    local digits = match(s, "^[0-9]+", p)
    if not digits then
      return position_error("expected digits", p, "in", s)
    end
    r.p = p + #digits
    local value = match(digits, "^0*(.+)$") -- as std::to_string prints it
    if #value > 20 or (#value == 20 and value > UINT64_MAX_TEXT) then
      return std_error("stoull")
    end
    if #value > 10 or tonumber(value) >= TWO32 then
      return std_error(
        "checked_conv: source value "
          .. value
          .. " is larger than target's maximum possible value 4294967295"
      )
    end
    if tonumber(value) >= limit then
      return nil, CONTENT_ERROR .. "Overflow reading " .. bits .. " bit integer from record content"
    end
    return value
  end)
end

-- xfrIP: dotted quad, each part decimal up to 255 (leading zeros allowed); ends at white space or
-- a comma, which is left for the trailing-data check.
local read_ipv4 = spaced(function(r)
  local s, p, n = r.s, r.p, r.n
  if not find(s, "^[0-9]", p) then
    return position_error("while parsing IP address, expected digits", p, "in", s)
  end
  local parts, octet, dots, last_was_digit = {}, 0, 0, false
  repeat
    local c = byte(s, p)
    if c == 46 then
      if not last_was_digit then
        return nil, CONTENT_ERROR .. "unable to parse IP address, dot without previous digit"
      end
      last_was_digit = false
      dots = dots + 1
      parts[dots] = octet
      octet = 0
      if dots > 3 then
        return nil, CONTENT_ERROR .. "unable to parse IP address, too many dots"
      end
    elseif c >= 48 and c <= 57 then
      last_was_digit = true
      octet = octet * 10 + c - 48
      if octet > 255 then
        return nil, CONTENT_ERROR .. "unable to parse IP address"
      end
    elseif DNS_SPACE[c] or c == 44 then
      break
    else
      return nil, CONTENT_ERROR .. "unable to parse IP address, strange character: " .. char(c)
    end
    p = p + 1
  until p > n
  r.p = p
  if dots ~= 3 then
    return nil, CONTENT_ERROR .. "unable to parse IP address, not enough dots"
  elseif not last_was_digit then
    return nil, CONTENT_ERROR .. "unable to parse IP address, trailing dot"
  end
  return parts[1] .. "." .. parts[2] .. "." .. parts[3] .. "." .. octet
end)

-- xfrIP6: the run of hex digits, colons and dots, through inet_pton; printed by inet_ntop.
local read_ipv6 = spaced(function(r)
  local s, p = r.s, r.p
  local address = match(s, "^[0-9A-Fa-f:.]*", p)
  if address == "" then
    return position_error("while parsing IPv6 address, expected xdigits", p, "in", s)
  end
  local raw = inet_pton6(address)
  if not raw then
    return nil, CONTENT_ERROR .. "while parsing IPv6 address: '" .. address .. "' is invalid"
  end
  r.p = p + #address
  return ipv6_to_text(raw)
end)

-- xfrName: up to white space (a carriage return belongs to the name), through DNSName's parser,
-- whose errors are not RecordTextExceptions (no "Parsing record content" prefix). Printed with
-- toString: absolute, escaped.
local read_name = spaced(function(r)
  local text = match(r.s, "^[^ \t\n]*", r.p)
  r.p = r.p + #text
  local wire, err = parse_wire(text)
  if not wire then
    return nil, err
  end
  return wire_to_text(wire, true)
end)

-- xfrText: quoted strings kept as written (escapes included, nothing is decoded), joined by one
-- space; a last unquoted token is accepted only when it is all ASCII letters and digits. `multi`
-- false reads one string (HINFO, NAPTR), and none at the end of the content.
local function text_reader(multi)
  return function(r)
    local s, n = r.s, r.n
    local out, count = {}, 0
    while r.p <= n do
      local err = skip_spaces(r)
      if err then
        return nil, err
      end
      local p = r.p
      if byte(s, p) ~= 34 then
        if not find(s, "^[0-9A-Za-z]*$", p) then
          return position_error('Data field in DNS should start with quote (")', p, "of", s)
        end
        count = count + 1
        out[count] = '"' .. sub(s, p) .. '"'
        r.p = n + 1
        break
      end
      local q = p + 1
      while q <= n and byte(s, q) ~= 34 do
        if byte(s, q) == 92 and q < n then
          q = q + 1 -- a backslash takes the next byte with it, a quote too
        end
        q = q + 1
      end
      if q > n then
        return nil, CONTENT_ERROR .. "Data field in DNS should end on a quote (\") in '" .. s .. "'"
      end
      count = count + 1
      out[count] = sub(s, p, q)
      r.p = q + 1
      if not multi then
        break
      end
    end
    return concat(out, " ")
  end
end

-- xfrUnquotedText (the CAA tag): one token up to a space (only a space ends it).
local read_unquoted = spaced(function(r)
  local token = match(r.s, "^[^ ]+", r.p)
  r.p = r.p + #token
  return token
end)

local uint8, uint16, uint32 = uint_reader(8), uint_reader(16), uint_reader(32)
local read_text, read_texts = text_reader(false), text_reader(true)

-- Per type code: the name boilerplate_conv gives it, then its fields in order.
local CONTENT_LAYOUTS = {
  [1] = { "A", read_ipv4 },
  [2] = { "NS", read_name },
  [5] = { "CNAME", read_name },
  [6] = { "SOA", read_name, read_name, uint32, uint32, uint32, uint32, uint32 },
  [7] = { "MB", read_name },
  [8] = { "MG", read_name },
  [9] = { "MR", read_name },
  [12] = { "PTR", read_name },
  [13] = { "HINFO", read_text, read_text },
  [14] = { "MINFO", read_name, read_name },
  [15] = { "MX", uint16, read_name },
  [16] = { "TXT", read_texts },
  [17] = { "RP", read_name, read_name },
  [18] = { "AFSDB", uint16, read_name },
  [28] = { "AAAA", read_ipv6 },
  [33] = { "SRV", uint16, uint16, uint16, read_name },
  [35] = { "NAPTR", uint16, uint16, read_text, read_text, read_text, read_name },
  [36] = { "KX", uint16, read_name },
  [39] = { "DNAME", read_name },
  [99] = { "SPF", read_texts },
  [257] = { "CAA", uint8, read_unquoted, read_texts },
  [65401] = { "ALIAS", read_name },
}

-- The content of a type with a layout, as getZoneRepresentation prints it, or nil and the message.
-- RecordTextReader trims white space at both ends first; data left after the last field fails
-- (boilerplate_conv's eof check, a MOADNSException: no "Parsing record content" prefix).
local function read_content(layout, content)
  local first, last = 1, #content
  while DNS_SPACE[byte(content, first)] do
    first = first + 1
  end
  while last >= first and DNS_SPACE[byte(content, last)] do
    last = last - 1
  end
  local r = { s = sub(content, first, last), p = 1, n = last - first + 1 }
  local out = ""
  for i = 2, #layout do
    local field, err = layout[i](r)
    if field == nil then
      return nil, cstr(err) -- LuaContext reads the message through what(): up to a NUL byte
    end
    -- RecordTextWriter puts one space before each field once the text is not empty
    out = out == "" and field or out .. " " .. field
  end
  if r.p <= r.n then
    return std_error(
      "When parsing " .. layout[1] .. " trailing data was not parsed: '" .. sub(r.s, r.p) .. "'"
    )
  end
  return out
end

function M.parse(code, content, host_parse)
  local layout = CONTENT_LAYOUTS[code]
  if layout then
    return read_content(layout, content)
  end
  if host_parse == nil then
    return content
  end
  local ok, result, err = pcall(host_parse, code, content)
  if ok and result ~= nil then
    return result
  end
  local reason = tostring(ok and (err or "invalid content") or result)
  if not find(reason, "Parsing record content", 1, true) then
    reason = "Parsing record content (try 'pdnsutil check-zone'): " .. reason
  end
  if find(reason, "Caught exception: ", 1, true) ~= 1 then
    reason = "Caught exception: " .. reason
  end
  return nil, reason
end

return M
