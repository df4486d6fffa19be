-- lua2pipe hook dispatcher: the Lua half of the hot path.
--
-- Python owns the pipe (framing, errors, logging, CMD); this file owns everything between one
-- question line and its answer text, so a question crosses from Python into Lua exactly once:
-- it builds the DNSName, QType and ctx values the way the native lua2 backend does, calls the
-- script's hook, checks every row the way native lua2 reads it, and renders the rows into the
-- final pipe answer ("DATA ...\n" lines ending in "END\n").
--
-- Entry points return the answer text, or `nil, reason` when the question must fail; Python then
-- answers "LOG\t<reason>" and "FAIL" (see lua2pipe.py, section "Answers").
--
-- The chunk is called as chunk(env, G, before_script): env is the module returned by
-- environment.lua, G the script's global table, before_script a copy of G taken just before the
-- script ran (what the script did not define is not callable through CMD).

local env, G, before_script = ...
local abi = 5 -- the pipe ABI pdns asked for in HELO; see M.set_abi

local DNSName, QType = env.DNSName, env.QType
local parse_name, is_name = DNSName.parse, DNSName.is
local new_qtype, is_qtype, qtype_code, qtype_name = QType.new, QType.is, QType.code_of, QType.name_of

local concat, format = table.concat, string.format
local floor, tonumber, tostring, type, pairs = math.floor, tonumber, tostring, type, pairs
local pcall, xpcall = pcall, xpcall
local traceback = debug.traceback

local M = {}

-- ---------------------------------------------------------------------------------------------
-- Integers as native lua2 reads them (LuaContext int readers): numbers and numeric strings are
-- accepted, fractions truncate toward zero, and the value wraps to the C type's width.

local TWO32 = 4294967296

local function to_integer(value)
  local number = tonumber(value)
  if number == nil or number ~= number or number == math.huge or number == -math.huge then
    return nil
  end
  if number >= 0 then return floor(number) end
  return -floor(-number)
end

local function wrap_unsigned32(n)
  return n % TWO32
end

local function wrap_signed32(n)
  n = n % TWO32
  if n >= 2147483648 then n = n - TWO32 end
  return n
end

-- %d refuses floats on Lua 5.3+, even integral ones; every number passed here is integral.
local function integer_text(n)
  return format("%.0f", n)
end

-- ---------------------------------------------------------------------------------------------
-- Content rendering. pdns splits an answer line on tabs, collapses empty fields and strips
-- trailing white space, so content must reach it with no tab, no newline and no meaning that
-- depends on either. Inside a quoted string a control byte keeps its value as a \DDD escape;
-- outside quotes, white space only separates tokens, so any white space byte becomes a space.
-- Any other control byte outside quotes cannot be represented and fails the question.

local function render_content(content)
  if not content:find("[%z\1-\31\127]") then return content end
  local out, quoted, after_backslash = {}, false, false
  for i = 1, #content do
    local c = content:sub(i, i)
    local byte = c:byte()
    local control = byte < 32 or byte == 127
    if quoted then
      if control then
        -- "\<byte>" and "<byte>" both mean the byte itself inside a string
        if after_backslash then out[#out] = nil end
        c = format("\\%03d", byte)
        after_backslash = false
      elseif after_backslash then
        after_backslash = false
      elseif c == "\\" then
        after_backslash = true
      elseif c == '"' then
        quoted = false
      end
    elseif c == '"' then
      quoted = true
    elseif c == "\t" or c == "\n" or c == "\r" or c == "\v" or c == "\f" then
      c = " "
    elseif control then
      return nil, format("content has control byte \\%03d outside a quoted string", byte)
    end
    out[#out + 1] = c
  end
  return concat(out)
end

-- pdns takes MX and SRV content as exactly two tab-separated fields: priority and the rest.
local PRIORITY_TYPES = { [15] = "MX", [33] = "SRV" }
-- Native pdns quotes TXT and SPF content that does not start with a quote (DNSBackend::get);
-- doing it here first keeps a tab or newline inside such content inside the string.
local QUOTED_TYPES = { [16] = true, [99] = true }

-- ---------------------------------------------------------------------------------------------
-- Rows. Keys and value types follow native lua2 (upstream, where 4.7.3 is stricter); an unknown
-- key with a scalar value only warns, as native does, and a table, function, userdata or
-- coroutine value anywhere fails the whole result, as native's table reader does.

local SCALAR = { string = true, number = true, boolean = true }

-- The environment's objects are tables; those two are the only tables a row value may be.
local function is_row_value(value)
  return SCALAR[type(value)] or is_name(value) or is_qtype(value)
end

local function describe(value)
  if type(value) == "string" then return format("%q", value):gsub("\\\n", "\\n") end
  return tostring(value)
end

local function bad(index, key, value, expected)
  return nil, format("row %s: %s value %s (%s) is not %s", tostring(index), key, describe(value),
    type(value), expected)
end

-- Reads one row table into `record`; returns record, or nil and the reason.
local function read_row(index, row, record, warnings)
  record.name, record.code, record.content, record.ttl = nil, 0, "", 0
  record.domain_id, record.auth, record.scope = -1, true, 0
  for key, value in pairs(row) do
    if not is_row_value(value) then
      return bad(index, tostring(key), value, "a string, number, boolean, DNSName or QType")
    end
    if key == "name" then
      if is_name(value) then
        record.name = value
      elseif type(value) == "string" then
        local ok, name = pcall(parse_name, value)
        if not ok then return bad(index, key, value, "a valid DNS name") end
        record.name = name
      else
        return bad(index, key, value, "a DNSName or a string")
      end
    elseif key == "type" then
      local code = to_integer(value)
      if code == nil then
        if is_qtype(value) then
          code = value:getCode()
        elseif type(value) == "string" then
          code = qtype_code(value)
        else
          return bad(index, key, value, "a QType, a type name or a type code")
        end
      end
      record.code = code % 65536
    elseif key == "content" then
      if type(value) == "string" then
        record.content = value
      elseif type(value) == "number" then
        record.content = integer_text(to_integer(value))
      else
        return bad(index, key, value, "a string or a number")
      end
    elseif key == "ttl" then
      local ttl = to_integer(value)
      if ttl == nil then return bad(index, key, value, "an integer") end
      record.ttl = wrap_unsigned32(ttl)
    elseif key == "domain_id" then
      local id = to_integer(value)
      if id == nil then return bad(index, key, value, "an integer") end
      record.domain_id = wrap_signed32(id)
    elseif key == "auth" then
      if type(value) == "boolean" then
        record.auth = value
      else
        local flag = to_integer(value)
        if flag == nil then return bad(index, key, value, "a boolean or an integer") end
        record.auth = flag ~= 0
      end
    elseif key == "scopeMask" or key == "scope_mask" then
      local scope = to_integer(value)
      if scope == nil then return bad(index, key, value, "an integer") end
      record.scope = scope % 256
    elseif key == "last_modified" then
      if to_integer(value) == nil then return bad(index, key, value, "an integer") end
    else
      warnings[#warnings + 1] = format("LOG\tUnsupported key '%s' in lookup or list result\n",
        tostring(key))
    end
  end
  return record
end

-- Set once per process: the pipe below ABI 3 has no field for auth or the scope mask.
local warned_abi_fields = false

-- Renders one checked record as a DATA line; returns the line, or nil and the reason.
local function render_row(index, record, lines)
  local code, content = record.code, record.content
  local name = record.name
  local name_text = name and name:toString() or "."
  if code == 0 then
    if content == "" then
      lines[#lines + 1] = format("LOG\tEmpty non-terminal row %s for %s cannot be sent through " ..
        "the pipe backend; left out\n", tostring(index), name_text)
      return true
    end
    return nil, format("row %s: type 0 (no type given) with content %s", tostring(index),
      describe(content))
  end
  if QUOTED_TYPES[code] and content:sub(1, 1) ~= '"' then
    content = '"' .. content .. '"'
  end
  local rendered, why = render_content(content)
  if not rendered then return nil, format("row %s: %s", tostring(index), why) end
  local type_name = qtype_name(code)
  if PRIORITY_TYPES[code] then
    local priority, rest = rendered:match("^ *(%S+) +(.-) *$")
    if not priority or rest == "" then
      return nil, format("row %s: %s content %s needs a priority and a target", tostring(index),
        type_name, describe(record.content))
    end
    rendered = priority .. "\t" .. rest
  elseif not rendered:find("%S") then
    return nil, format("row %s: %s record %s has empty content", tostring(index), type_name,
      name_text)
  end
  if abi >= 3 then
    lines[#lines + 1] = format("DATA\t%d\t%d\t%s\tIN\t%s\t%s\t%s\t%s\n", record.scope,
      record.auth and 1 or 0, name_text, type_name, integer_text(record.ttl),
      integer_text(record.domain_id), rendered)
  else
    if not warned_abi_fields and (not record.auth or record.scope ~= 0) then
      warned_abi_fields = true
      lines[#lines + 1] = "LOG\tauth=false and scopeMask need pipe-abi-version 3 or later; " ..
        "they are ignored at this ABI\n"
    end
    lines[#lines + 1] = format("DATA\t%s\tIN\t%s\t%s\t%s\t%s\n", name_text, type_name,
      integer_text(record.ttl), integer_text(record.domain_id), rendered)
  end
  return true
end

-- Renders a hook's result table into the answer text, or returns nil and the reason.
local function render_result(hook, result, on_row)
  if type(result) ~= "table" then
    return nil, format("%s returned %s, expected a table of rows", hook, describe(result))
  end
  local lines, warnings, record = {}, {}, {}
  for index, row in pairs(result) do
    if to_integer(index) == nil then
      return nil, format("%s result has key %s; rows must be in an array", hook, describe(index))
    end
    if type(row) ~= "table" then
      return nil, format("%s result row %s is %s, expected a table", hook, tostring(index),
        describe(row))
    end
    local ok, why = read_row(index, row, record, warnings)
    if not ok then return nil, hook .. " " .. why end
    if on_row then on_row(record) end
    ok, why = render_row(index, record, lines)
    if not ok then return nil, hook .. " " .. why end
  end
  for i = 1, #warnings do lines[#lines + 1] = warnings[i] end
  lines[#lines + 1] = "END\n"
  return concat(lines)
end

-- ---------------------------------------------------------------------------------------------
-- Calling the script. Errors are caught in Lua so a failing hook costs no Python exception;
-- the message names the script's file and line, as the operator needs it in pdns's log.

local script_chunk -- the chunk name of the script, set by M.capture

local function script_position()
  for level = 3, 40 do
    local info = debug.getinfo(level, "Sl")
    if not info then break end
    if info.source == script_chunk and info.currentline and info.currentline > 0 then
      return info.short_src .. ":" .. info.currentline
    end
  end
end

local function error_handler(message)
  local text = type(message) == "string" and message or describe(message)
  if script_chunk and text:sub(1, #script_chunk - 1) ~= script_chunk:sub(2) then
    local where = script_position()
    if where then text = where .. ": " .. text end
  end
  return (text:gsub("[%z\1-\31]", " "))
end

-- Hooks, captured once after the script loaded (native reads them before dns_init and never again).
local hooks = {}

-- xpcall in Lua 5.1 takes no arguments, so the call's arguments travel in these upvalues.
local call_hook, call_a, call_b, call_c, call_d
local function call_current()
  return call_hook(call_a, call_b, call_c, call_d)
end

local function call(name, fn, a, b, c, d)
  call_hook, call_a, call_b, call_c, call_d = fn, a, b, c, d
  local ok, result = xpcall(call_current, error_handler)
  call_hook, call_a, call_b, call_c, call_d = nil, nil, nil, nil, nil
  if not ok then return nil, name .. " failed: " .. result end
  return true, result
end

local HOOK_NAMES = {
  "dns_lookup", "dns_list", "dns_get_all_domains", "dns_get_domaininfo", "dns_get_domain_metadata",
  "dns_get_all_domain_metadata", "dns_get_domain_keys", "dns_get_before_and_after_names_absolute",
  "dns_set_notified",
}

local function read_function(name)
  local value = G[name]
  if value ~= nil and type(value) ~= "function" then
    error(format("%s must be a function, not %s", name, type(value)), 0)
  end
  return value
end

-- Native lua2's post-load step, in native's order: capture the hooks, run dns_init, then check
-- what is required. Raises an error string on a load error.
function M.capture(chunk_name)
  script_chunk = chunk_name
  for _, name in ipairs(HOOK_NAMES) do hooks[name] = read_function(name) end
  local init = read_function("dns_init")
  if init then
    hooks.dns_init = init
    local ok, why = call("dns_init", init)
    if not ok then error(why, 0) end
  end
  hooks.dns_deinit = read_function("dns_deinit")
  if not hooks.dns_lookup then error("dns_lookup missing", 0) end
  local dnssec = G.dns_dnssec
  if dnssec ~= nil and type(dnssec) ~= "boolean" then
    error(format("dns_dnssec must be a boolean, not %s", type(dnssec)), 0)
  end
  if dnssec then
    if not hooks.dns_get_domain_metadata then
      error("dns_dnssec is true but dns_get_domain_metadata is missing", 0)
    end
    if not hooks.dns_get_before_and_after_names_absolute then
      error("dns_dnssec is true but dns_get_before_and_after_names_absolute is missing", 0)
    end
  end
  local defined = {}
  for _, name in ipairs(HOOK_NAMES) do
    if hooks[name] then defined[#defined + 1] = name end
  end
  if hooks.dns_init then defined[#defined + 1] = "dns_init" end
  if hooks.dns_deinit then defined[#defined + 1] = "dns_deinit" end
  return concat(defined, " "), dnssec == true
end

function M.set_abi(version)
  abi = version
end

function M.deinit()
  if hooks.dns_deinit then
    local ok, why = call("dns_deinit", hooks.dns_deinit)
    if not ok then return why end
  end
end

-- ---------------------------------------------------------------------------------------------
-- Questions.

local EMPTY_ADDRESS, EMPTY_NETWORK = "0.0.0.0", "0.0.0.0/0"

-- Zone names learnt from zone-walk SOA answers: below ABI 4 an AXFR line carries only the id.
local zone_names = {}
local function remember_zone(record)
  if record.code == 6 and record.name then zone_names[record.domain_id] = record.name end
end

-- Q: qname, qtype and id as pdns sent them; remote, local and real remote as far as the ABI has
-- them (nil otherwise).
function M.lookup(qname_text, qtype_text, id, remote, local_address, real_remote)
  local ok, qname = pcall(parse_name, qname_text)
  if not ok then return nil, "invalid qname: " .. error_handler(qname) end
  local qtype = new_qtype(qtype_text)
  local ctx = {}
  if remote ~= EMPTY_ADDRESS or (local_address and local_address ~= EMPTY_ADDRESS)
      or (real_remote and real_remote ~= EMPTY_NETWORK) then
    ctx.source_address = remote
    ctx.real_source_address = real_remote
        or (remote:find(":", 1, true) and remote .. "/128" or remote .. "/32")
  end
  local result
  ok, result = call("dns_lookup", hooks.dns_lookup, qtype, qname, id, ctx)
  if not ok then return nil, result end
  return render_result("dns_lookup", result, id == -1 and qtype:getCode() == 6 and remember_zone or nil)
end

-- AXFR: the zone id, and the zone name from ABI 4 on.
function M.list(id, zone_text)
  if not hooks.dns_list then return nil, "dns_list missing - cannot do AXFR" end
  local target
  if zone_text then
    local ok, zone = pcall(parse_name, zone_text)
    if not ok then return nil, "invalid zone name: " .. error_handler(zone) end
    target = zone
  else
    target = zone_names[id]
    if not target then
      return nil, format("AXFR of zone id %s: the zone name is unknown (pdns sends it from " ..
        "pipe-abi-version 4 on)", integer_text(id))
    end
  end
  local ok, result = call("dns_list", hooks.dns_list, target, id)
  if not ok then return nil, result end
  if type(result) == "boolean" then
    return nil, format("dns_list returned %s for %s: no such zone or not listable",
      tostring(result), target:toString())
  end
  return render_result("dns_list", result)
end

-- ---------------------------------------------------------------------------------------------
-- backend-cmd, as native lua2 does it: the first word names a function the script defined, which
-- is called with the rest of the text as one string; its result is converted to a string.

function M.call_script_function(name, argument)
  local fn = G[name]
  if type(fn) ~= "function" or fn == before_script[name] then
    return nil, name .. "not found"
  end
  local ok, result = call(name, fn, argument)
  if not ok then return nil, result end
  if type(result) == "number" then result = tostring(result) end
  if type(result) ~= "string" then
    return nil, format("%s returned %s, expected a string", name, describe(result))
  end
  return result
end

return M
