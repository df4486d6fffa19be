-- lua2pipe remote mode: the hot half of pdns's remote backend protocol (launch=remote, pipe
-- connector), for `lookup` and `list`.
--
-- A lookup request line comes here whole (M.answer, one crossing per lookup, as the pipe's Q
-- line does): it is matched in the exact form pdns writes it, and anything else is handed back
-- to Python (lua2pipe.py, section "The remote backend's protocol"), which parses it as JSON and
-- calls M.lookup or M.list with the parameters as strings and numbers. Either way this file calls
-- the script's hook exactly as the pipe does (dispatch.lua's hook call, ctx mapping and row
-- reader) and renders the rows straight into the final reply line.
--
-- Rows are rendered as pdns 4.7.3's RemoteBackend::get reads them
-- (modules/remotebackend/remotebackend.cc): `qtype` a mnemonic string (a number would be an
-- error), `qname` and `content` strings, `ttl` a JSON number, `domain_id`, `auth` (0/1: a JSON
-- boolean is ignored) and `scopeMask` left out when they have pdns's default (-1, 1, 0), which
-- keeps replies short: pdns reads them one byte per read() when a timeout is set.
--
-- The chunk is called as chunk(dispatch), the module dispatch.lua returned.

local dispatch = ...

local env, hooks, call, read_entry, describe, call_lookup =
  dispatch.env,
  dispatch.hooks,
  dispatch.call,
  dispatch.read_entry,
  dispatch.describe,
  dispatch.call_lookup
local answer_buffer, take_answer = dispatch.answer_buffer, dispatch.take_answer
local parse_name, qtype_name = env.DNSName.parse, env.QType.name_of

-- The standard library as it was before the script ran (the script may assign over any of it).
local concat, format, byte, find, gsub, match =
  table.concat, string.format, string.byte, string.find, string.gsub, string.match
local next, tostring, type, tonumber, pcall = next, tostring, type, tonumber, pcall

local M = {}

-- ---------------------------------------------------------------------------------------------
-- JSON text. Strings escape the quote, the backslash and control bytes; other bytes pass as they
-- are (pdns's json11 parser copies them; names arrive already escaped by DNSName::toString).

local ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
local function escape_byte(c)
  return ESCAPES[c] or format("\\u%04x", byte(c))
end

local function json_string(text)
  if not find(text, '[%z\1-\31"\\\127]') then
    return '"' .. text .. '"'
  end
  return '"' .. gsub(text, '[%z\1-\31"\\\127]', escape_byte) .. '"'
end
M.json_string = json_string

-- `log` entries: pdns logs each at Info as "[remotebackend]: <text>".
local function log_member(messages)
  if #messages == 0 then
    return ""
  end
  local quoted = {}
  for i = 1, #messages do
    quoted[i] = json_string(messages[i])
  end
  return ',"log":[' .. concat(quoted, ",") .. "]"
end

-- ---------------------------------------------------------------------------------------------
-- Rows.

-- Native lua2 quotes TXT and SPF content that does not start with a quote (as dispatch.lua does
-- for the pipe); RemoteBackend::get takes content as it comes, so it is done here.
local QUOTED_TYPES = { [16] = true, [99] = true }

-- Puts one checked row into the reply buffer as a JSON object.
local function put_row(reply, record)
  local code, content = record.code, record.content
  -- type 0 is an empty non-terminal: pdns's QType("ENT") is code 0, and with content it fails
  -- to parse ("When parsing ENT trailing data was not parsed") as native's ENT with content does
  local type_text = code == 0 and "ENT" or qtype_name(code)
  if QUOTED_TYPES[code] and byte(content, 1) ~= 34 then
    content = '"' .. content .. '"'
  end
  reply:putf(
    '{"qtype":"%s","qname":%s,"content":%s,"ttl":%d',
    type_text,
    json_string(record.name_text),
    json_string(content),
    record.ttl
  )
  if record.domain_id ~= -1 then
    reply:putf(',"domain_id":%d', record.domain_id)
  end
  if not record.auth then
    reply:put(',"auth":0')
  end
  if record.scope ~= 0 then
    reply:putf(',"scopeMask":%d', record.scope)
  end
  reply:put("}")
end

local record = {} -- read_entry's output, reused row after row (it sets every field)

-- A hook's result table as a whole reply line, or nil and the reason. Rows in `next` order, as
-- native's lua_next gives them; unknown row keys become `log` entries, as native's warnings.
-- Built in dispatch.lua's answer buffer (LuaJIT's string.buffer): a third of the time a table
-- of row strings joined took for a lookup.
local function rows_reply(hook, result)
  if type(result) ~= "table" then
    return nil, format("%s returned %s, expected a table of rows", hook, describe(result))
  end
  local reply, warnings, separator = answer_buffer:reset(), {}, '{"result":['
  for index, row in next, result do
    local ok, why = read_entry(hook, index, row, record, warnings)
    if not ok then
      return nil, why
    end
    reply:put(separator)
    separator = ","
    put_row(reply, record)
  end
  if separator ~= "," then
    reply:put(separator)
  end -- no rows
  for i = 1, #warnings do -- read_entry words them as pipe LOG lines
    warnings[i] = match(warnings[i], "^LOG\t(.-)\n$") or warnings[i]
  end
  reply:put("]")
  reply:put(log_member(warnings))
  reply:put("}\n")
  return take_answer()
end

-- ---------------------------------------------------------------------------------------------
-- Methods.

local EMPTY_ADDRESS, EMPTY_NETWORK = "0.0.0.0", "0.0.0.0/0"

-- lookup: ctx as native lua2 builds it (lua2backend.hh lookup): empty for pdns's own lookups
-- (no packet: remote, local and real-remote are 0.0.0.0, 0.0.0.0, 0.0.0.0/0), else the client
-- address and the real remote (the ECS subnet, or the client as /32 or /128).
function M.lookup(qtype_text, qname_text, id, remote, local_address, real_remote)
  local has_packet = remote ~= EMPTY_ADDRESS
    or local_address ~= EMPTY_ADDRESS
    or real_remote ~= EMPTY_NETWORK
  local ok, result = call_lookup(qname_text, qtype_text, id, has_packet, remote, real_remote)
  if not ok then
    return nil, ok == false and "malformed request: " .. result or result
  end
  return rows_reply("dns_lookup", result)
end

-- list: false (or true) from the hook is "no such zone": pdns fails the transfer, as native.
-- The reply is rendered whole, unlike the pipe's AXFR answer (dispatch.lua, STREAM_ROWS), and so
-- counts against --max-query-ms. pdns 4.7.3's PipeConnector::recv_message (modules/remotebackend/
-- pipeconnector.cc) applies its timeout only while waiting for a line to start and then reads the
-- rest without one, so a streamed line would suit pdns; a failure after rows were sent would have
-- to end the line as `],"result":false,"log":[...]}` (json11 keeps a repeated key's last value).
function M.list(zone_text, id)
  if not hooks.dns_list then
    return '{"result":false,"log":["dns_list missing - cannot do AXFR"]}\n'
  end
  local ok, zone = pcall(parse_name, zone_text)
  if not ok then
    return nil, "malformed request: invalid zonename: " .. tostring(zone)
  end
  local result
  ok, result = call("dns_list", hooks.dns_list, zone, id)
  if not ok then
    return nil, result
  end
  if type(result) == "boolean" then
    return format(
      '{"result":false,"log":[%s]}\n',
      json_string(
        format(
          "dns_list returned %s for %s: no such zone or not listable",
          tostring(result),
          zone:toString()
        )
      )
    )
  end
  return rows_reply("dns_list", result)
end

-- ---------------------------------------------------------------------------------------------
-- The lookup request line as pdns 4.7.3 writes it (RemoteBackend::lookup, remotebackend.cc:
-- json11's dump, keys in byte order, separators ": " and ", "; names are DNSName::toString
-- forms, escaped to printable ASCII). Strings are taken only without a backslash (a JSON
-- escape), control or non-ASCII byte: those lines, rare, go through Python's JSON reader.
local S = '"([^"\\%c\128-\255]*)"'
local LOOKUP = '^{"method": "lookup", "parameters": {"local": '
  .. S
  .. ', "qname": '
  .. S
  .. ', "qtype": '
  .. S
  .. ', "real%-remote": '
  .. S
  .. ', "remote": '
  .. S
  .. ', "zone%-id": (%-?%d+)}}$'

-- A request line: the reply line; false for a line this does not take (Python answers it, and no
-- hook has run); nil, reason, qname when the lookup fails (Python answers with a failing row).
local function answer(line)
  local local_address, qname, qtype, real_remote, remote, id_text = match(line, LOOKUP)
  if not qname or find(id_text, "^%-?0%d") then
    return false
  end -- JSON has no leading zeros
  -- the range lua2pipe.py's _parameter accepts for an int; "-0" + 0 is 0 (-0 on LuaJIT)
  local id = tonumber(id_text) + 0
  if id < -2147483648 or id >= 4294967296 then
    return false
  end
  local reply, why = M.lookup(qtype, qname, id, remote, local_address, real_remote)
  if reply then
    return reply
  end
  if find(why, "^malformed request: ") then
    return false
  end -- a bad qname: no hook ran
  return nil, why, qname
end
M.answer = answer

-- M.answer under --max-memory, as dispatch.lua's answer_capped for the pipe: the heap is left
-- under the cap's soft limit after every answer; when live data alone is over it, the lookup
-- fails and the fourth value asks Python for a fresh Lua state.
M.answer_capped = dispatch.capped(answer, function()
  return "dns_lookup"
end, function(line, ok, qname)
  if ok then
    return qname
  end
  return match(line, '"qname": "([^"]*)"')
end)

return M
