-- lua2pipe hook dispatcher: the Lua half of the hot path.
--
-- The serving loop (lua/serve.lua on LuaJIT, Python's elsewhere) frames the pipe; Python owns
-- errors, logging and CMD; this file owns everything between one question line and its answer
-- text, so a question crosses from Python into Lua at most once (never in LuaJIT's loop):
-- it builds the DNSName, QType and ctx values the way the native lua2 backend does, calls the
-- script's hook, checks every row the way native lua2 reads it, and renders the rows into the
-- final pipe answer ("DATA ...\n" lines ending in "END\n").
--
-- M.answer takes a whole Q or AXFR line and returns the answer text, or `nil, reason, zone_walk`
-- when the question must fail (Python then answers "LOG\t<reason>" and "FAIL", section "Answers"
-- of lua2pipe.py), or `false` for a line Python answers itself (CMD, anything else).
--
-- The chunk is called as chunk(env, G, before_script): env is the module returned by
-- environment.lua, G the script's global table, before_script a copy of G taken just before the
-- script ran (what the script did not define is not callable through CMD).

local env, G, before_script = ...
local abi = 5 -- the pipe ABI pdns asked for in HELO; see M.set_abi

local DNSName, QType, number_text = env.DNSName, env.QType, env.number_text
local to_integer, wrap_integer, bounded_cache = env.to_integer, env.wrap_integer, env.bounded_cache
local parse_name, is_name, name_wire = DNSName.parse, DNSName.is, DNSName.wire
local new_qtype, is_qtype, qtype_code, qtype_name =
  QType.new, QType.is, QType.code_of, QType.name_of

-- The standard library as it was before the script ran (the script may assign over any of it,
-- string's fields included: s:match(...) would look match up in the string table at call time,
-- through the string metatable's __index, so this file calls the captured functions instead).
local concat, sort, format = table.concat, table.sort, string.format
local byte, find, sub, gsub, match, upper =
  string.byte, string.find, string.sub, string.gsub, string.match, string.upper
local floor, huge, tonumber, tostring, type = math.floor, math.huge, tonumber, tostring, type
local ipairs, pcall, xpcall, error, collectgarbage = ipairs, pcall, xpcall, error, collectgarbage
local select = select
-- A script's tables are walked with next, as native's lua_next walks them: a __pairs metamethod
-- (honoured by pairs from Lua 5.2 on) is not called.
local next = next
local getinfo, gethook, sethook = debug.getinfo, debug.gethook, debug.sethook

local M = {}

-- ---------------------------------------------------------------------------------------------
-- Integers as native lua2 reads them: environment.lua's reader (LuaContext's int reader), wrapped
-- to the width of the field pdns stores.

local TWO32 = 4294967296

local function wrap_unsigned32(n)
  return wrap_integer(n, TWO32)
end

local function wrap_signed32(n)
  return wrap_integer(n, TWO32, true)
end

-- An integral number as decimal text on every Lua version (tostring may give "1e+15" or "16.0").
local function integer_text(n)
  return format("%.0f", n)
end

-- ---------------------------------------------------------------------------------------------
-- Content rendering. pdns splits an answer line on tabs, collapses empty fields and strips
-- trailing white space (modules/pipebackend/coprocess.cc CoProcess::receive: boost::trim_right),
-- so content must reach it with no tab, no newline, and nothing at its end that the trim eats.
-- Inside a quoted string a control byte keeps its value as a \DDD escape. Outside quotes, tab,
-- newline and carriage return are white space to pdns's record parsers (pdns/dnsname.hh
-- dns_isspace; pdns/rcpgenerator.cc skipSpaces), so they become spaces; every other control byte
-- (NUL, \v and \f included, which are not dns_isspace) is part of its token natively and is
-- written as \DDD, which pdns's name parser reads back as the same byte: a CNAME content
-- "a\1b.example." is served as a\001b.example., as native lua2 serves it.

-- Byte loops like this one stand in for patterns on the hot path: LuaJIT compiles them, while a
-- pattern is a C call that ends the trace.
local function has_control_byte(text)
  for i = 1, #text do
    local code = byte(text, i)
    if code < 32 or code == 127 then
      return true
    end
  end
  return false
end

local function render_content(content)
  if not has_control_byte(content) then
    return content
  end
  local out, quoted, after_backslash = {}, false, false
  for i = 1, #content do
    local c = sub(content, i, i)
    local code = byte(c)
    local control = code < 32 or code == 127
    if quoted then
      if control then
        -- "\<byte>" and "<byte>" both mean the byte itself inside a string
        if after_backslash then
          out[#out] = nil
        end
        c = format("\\%03d", code)
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
    elseif c == "\t" or c == "\n" or c == "\r" then
      c = " "
    elseif control then
      c = format("\\%03d", code)
    end
    out[#out + 1] = c
  end
  return concat(out)
end

-- pdns takes MX and SRV content as exactly two tab-separated fields: priority and the rest. Natively
-- the priority is the digits up to the first non-digit, and only space, tab, CR and LF are skipped
-- before the next field (pdns/rcpgenerator.cc RecordTextReader::xfr32, skipSpaces): "10\vmail."
-- is 10 and the name "\011mail.", and "10mail." is 10 and "mail.". A priority that does not
-- start with a digit fails natively (xfr32 throws), so it fails here too.
local PRIORITY_TYPES = { [15] = "MX", [33] = "SRV" }
-- Native pdns quotes TXT content that does not start with a quote (pdns/dnsbackend.cc
-- DNSBackend::get(DNSZoneRecord&)); doing it here first keeps a tab or newline inside such
-- content inside the string. SPF is not quoted there: unquoted SPF content fails natively, and
-- through the pipe pdns fails it the same way.
local TXT = 16

-- ---------------------------------------------------------------------------------------------
-- Rows. Keys and value types follow native lua2 (upstream, where 4.7.3 is stricter); an unknown
-- key with a scalar value only warns, as native does, and a table, function, userdata or
-- coroutine value anywhere fails the whole result, as native's table reader does.

local SCALAR = { string = true, number = true, boolean = true }

-- The environment's objects (userdata; tables on Lua 5.2+): those two are the only ones a row
-- value may be.
local OBJECT_KIND = env.OBJECT_KIND

local function is_row_value(value, kind)
  return SCALAR[kind] or (kind == OBJECT_KIND and (is_name(value) or is_qtype(value)))
end

local function describe(value)
  if type(value) == "string" then
    return (gsub(format("%q", value), "\\\n", "\\n"))
  end
  return tostring(value)
end

-- A string, or a number as native reads it into a string.
local function text_of(value)
  return type(value) == "number" and number_text(value) or value
end

local function bad(index, key, value, expected)
  return nil,
    format(
      "row %s: %s value %s (%s) is not %s",
      tostring(index),
      key,
      describe(value),
      type(value),
      expected
    )
end

-- Names of letters, digits, "-", "_" and "*" print exactly as written (plus the final dot), so
-- the common row name needs no DNSName: AXFR of a large zone is mostly this. Row names repeat
-- from question to question, so the texts that needed a final dot are cached (bounded, like the
-- environment's caches).
local plain_names, cache_plain_name = bounded_cache(4096)

local PLAIN_NAME_BYTE = {} -- letters, digits, "-", "_" and "*"
for code = 0, 255 do
  PLAIN_NAME_BYTE[code] = find(string.char(code), "[0-9A-Za-z_*-]") ~= nil -- %w follows the locale
end

local function plain_name_text(text)
  local cached = plain_names[text]
  if cached then
    return cached
  end
  local length, label = #text, 0
  if length == 0 or length > 253 then
    return nil
  end
  for i = 1, length do
    local code = byte(text, i)
    if code == 46 then
      if label == 0 then -- a leading dot or an empty label
        return nil
      end
      label = 0
    elseif PLAIN_NAME_BYTE[code] and label < 63 then
      label = label + 1
    else
      return nil
    end
  end
  if label == 0 then -- already absolute: nothing worth caching
    return text
  end
  return cache_plain_name(text, text .. ".")
end

-- A row name's text for the DATA line, or nil. pdns reads it back with DNSName() in
-- PipeBackend::get (modules/pipebackend/pipebackend.cc), which refuses a name over 255 bytes in
-- wire form; that throw is not a PDNSException, so pdns neither reads the rest of the answer nor
-- restarts the coprocess, and the next question would get this answer's leftover lines. DNSName()
-- itself accepts 254 characters without a final dot (pdns/dnsname.cc counts the text, not the
-- wire), so newDN gives such a name, and native lua2 serves a malformed packet with it. The empty
-- name (makeRelative outside the zone) is the root natively.
local function row_name_text(name)
  local wire = name_wire(name)
  if wire == "" then
    return "."
  elseif #wire > 255 then
    return nil
  end
  return name:toString()
end

-- Row keys must read as strings (native reads a row as vector<pair<string, variant>>: a key of
-- another type fails the whole result, as a bad value does).
local KEY_TYPES = { string = true, number = true }

-- The keys of a row that read as integers (modules/lua2backend/lua2api2.hh parseLookup), each
-- wrapped to the width of its DNSResourceRecord field (pdns/dns.hh: ttl uint32_t, domain_id int,
-- scopeMask uint8_t); last_modified only has to read as one.
local INTEGER_KEYS =
  { ttl = true, domain_id = true, scopeMask = true, scope_mask = true, last_modified = true }

-- Reads one row table into `record`; returns record, or nil and the reason.
local function read_row(index, row, record, warnings)
  record.name_text, record.code, record.content, record.ttl = ".", 0, "", 0
  record.domain_id, record.auth, record.scope = -1, true, 0
  for key, value in next, row do
    if not KEY_TYPES[type(key)] then
      return nil,
        format("row %s: key %s (%s) is not a string", tostring(index), describe(key), type(key))
    end
    if not is_row_value(value, type(value)) then
      return bad(index, text_of(key), value, "a string, number, boolean, DNSName or QType")
    end
    if key == "name" then
      local text
      if is_name(value) then
        text = row_name_text(value)
      elseif type(value) == "string" then
        text = plain_name_text(value)
        if not text then
          local ok, name = pcall(parse_name, value)
          if not ok then
            return bad(index, key, value, "a valid DNS name")
          end
          text = row_name_text(name)
        end
      else
        return bad(index, key, value, "a DNSName or a string")
      end
      if not text then
        return bad(index, key, value, "a valid DNS name (over 255 bytes in wire form)")
      end
      record.name_text = text
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
        if value ~= value or value == huge or value == -huge then
          return bad(index, key, value, "a finite number")
        end
        -- upstream pdns reads a number content as an int (to_string of it): truncated, wrapped to
        -- 32 bits, and -0.0 is 0 (4.7.3 fails every number content)
        record.content = integer_text(wrap_signed32(to_integer(value)) + 0)
      else
        return bad(index, key, value, "a string or a number")
      end
    elseif key == "auth" then
      if type(value) == "boolean" then
        record.auth = value
      else
        local flag = to_integer(value)
        if flag == nil then
          return bad(index, key, value, "a boolean or an integer")
        end
        record.auth = flag ~= 0
      end
    elseif INTEGER_KEYS[key] then
      local n = to_integer(value)
      if n == nil then
        return bad(index, key, value, "an integer")
      elseif key == "ttl" then
        record.ttl = wrap_unsigned32(n)
      elseif key == "domain_id" then
        record.domain_id = wrap_signed32(n)
      elseif key ~= "last_modified" then
        record.scope = n % 256
      end
    else
      -- a LOG line of its own: a control byte in the key must not break it (or forge a line)
      warnings[#warnings + 1] = format(
        "LOG\tUnsupported key '%s' in lookup or list result\n",
        (
          gsub(text_of(key), "[%z\1-\31\127]", function(c)
            return format("\\x%02x", byte(c))
          end)
        )
      )
    end
  end
  return record
end

-- Set once per process: the pipe below ABI 3 has no field for auth or the scope mask.
local warned_abi_fields = false

-- Rendered content has no white space but spaces, so a first byte other than a space settles it.
local function is_blank(rendered)
  local first = byte(rendered, 1)
  return first == nil or (first == 32 and not find(rendered, "[^ ]"))
end

-- Renders one checked record into the answer (a DATA line, or a LOG line for a row the pipe
-- cannot carry); returns true, or nil and the reason.
local function render_row(index, record, answer)
  local code, content, name_text = record.code, record.content, record.name_text
  if code == 0 then
    if content == "" then
      answer:putf(
        "LOG\tEmpty non-terminal row %s for %s cannot be sent through the pipe "
          .. "backend; left out\n",
        tostring(index),
        name_text
      )
      return true
    end
    return nil,
      format("row %s: type 0 (no type given) with content %s", tostring(index), describe(content))
  end
  if code == TXT and byte(content, 1) ~= 34 then
    content = '"' .. content .. '"'
  end
  local rendered = render_content(content)
  local type_name = qtype_name(code)
  if PRIORITY_TYPES[code] then
    local priority, rest = match(rendered, "^ *(%d+) *(.-) *$")
    if not priority or rest == "" then
      return nil,
        format(
          "row %s: %s content %s needs a priority and a target",
          tostring(index),
          type_name,
          describe(record.content)
        )
    end
    rendered = priority .. "\t" .. rest
  elseif is_blank(rendered) then
    return nil,
      format("row %s: %s record %s has empty content", tostring(index), type_name, name_text)
  end
  if abi >= 3 then
    answer:putf(
      "DATA\t%d\t%d\t%s\tIN\t%s\t%d\t%d\t%s\n",
      record.scope,
      record.auth and 1 or 0,
      name_text,
      type_name,
      record.ttl,
      record.domain_id,
      rendered
    )
  else
    if not warned_abi_fields and (not record.auth or record.scope ~= 0) then
      warned_abi_fields = true
      answer:put(
        "LOG\tauth=false and scopeMask need pipe-abi-version 3 or later; they are "
          .. "ignored at this ABI\n"
      )
    end
    answer:putf(
      "DATA\t%s\tIN\t%s\t%d\t%d\t%s\n",
      name_text,
      type_name,
      record.ttl,
      record.domain_id,
      rendered
    )
  end
  return true
end

-- One entry of a hook's result (its key and its row), read and checked into `record`: true, or
-- nil and the reason. Shared by the pipe's rendering and remote.lua's, which write it differently.
local function read_entry(hook, index, row, record, warnings)
  if type(index) ~= "number" and to_integer(index) == nil then
    return nil, format("%s result has key %s; rows must be in an array", hook, describe(index))
  end
  if type(row) ~= "table" then
    return nil,
      format("%s result row %s is %s, expected a table", hook, tostring(index), describe(row))
  end
  local ok, why = read_row(index, row, record, warnings)
  if not ok then
    return nil, hook .. " " .. why
  end
  return true
end

-- One entry of a hook's result, read into `record`, then rendered into the answer.
local function render_one(hook, index, row, answer, warnings, record, on_row)
  local ok, why = read_entry(hook, index, row, record, warnings)
  if not ok then
    return nil, why
  end
  if on_row then
    on_row(record)
  end
  ok, why = render_row(index, record, answer)
  if not ok then
    return nil, hook .. " " .. why
  end
  return true
end

-- The answer text is built in one buffer: LuaJIT's string.buffer appends without a string per
-- line (several times faster than joining the lines with table.concat, see bench/profile.py);
-- elsewhere a table of pieces offers the same methods. stream_part(writer) hands the writer the
-- rows the buffer holds (see M.set_stream) and empties it.
local answer_buffer, stream_part
do
  -- Built into LuaJIT 2.1. PUC Lua is not asked: its require would search the module path, the
  -- working directory included.
  local has_buffer, buffer = false, nil
  if jit then
    has_buffer, buffer = pcall(require, "string.buffer")
  end
  if has_buffer then
    answer_buffer = buffer.new()
    local cast = require("ffi").cast
    -- The writer reads the rows in place (at an address a double holds exactly: user space is
    -- under 2^47). A string per part was the only garbage a large AXFR made, and LuaJIT's
    -- collector, paced by allocation, frees none until a cycle has marked the script's whole
    -- live heap: for bench/large_zone.lua's million rows (346 MB of Lua heap) the heap grew by
    -- 51 MB, the parts' 53 MB. A collector tuned to finish cycles in time (setpause 102-105,
    -- setstepmul 100000) held that to 12-22 MB, but rendered in 1.7-2.7 s instead of 0.5: each
    -- cycle marks every row (a full collection of them takes 0.9-1 s).
    function stream_part(writer)
      local rows, length = answer_buffer:ref()
      writer(tonumber(cast("uintptr_t", rows)), length)
      answer_buffer:reset()
    end
  else
    local Pieces = {}
    Pieces.__index = Pieces
    function Pieces:put(text)
      self[#self + 1] = text
    end
    function Pieces:putf(pattern, ...)
      self[#self + 1] = format(pattern, ...)
    end
    function Pieces:reset()
      for i = #self, 1, -1 do
        self[i] = nil
      end
      return self
    end
    function Pieces:get()
      local text = concat(self)
      self:reset()
      return text
    end
    Pieces.free = Pieces.reset
    answer_buffer = setmetatable({}, Pieces)
    function stream_part(writer)
      local text = answer_buffer:get()
      writer(text, #text)
    end
  end
end
-- An answer longer than this gives its buffer space back (a large AXFR would otherwise keep it).
local KEPT_BUFFER_BYTES = 65536

-- The answer built in answer_buffer, as a string; the buffer gives back the space of a large one.
local function take_answer()
  local text = answer_buffer:get()
  if #text > KEPT_BUFFER_BYTES then
    answer_buffer:free()
  end
  return text
end

local result_record = {} -- read_row's output, reused row after row (it sets every field)

-- AXFR answers are streamed: every STREAM_ROWS rows the text rendered so far goes to the host's
-- writer (M.set_stream), which writes it to pdns and restarts the --max-query-ms clock. pdns
-- times each read of an answer, not the answer (CoProcess::receive, modules/pipebackend/
-- coprocess.cc, waits at most pipe-timeout for each 4096-byte read), and reads a list answer
-- row by row as the transfer goes (PipeBackend::get, pipebackend.cc), so a large zone is no
-- longer rendered whole (1.4-1.9 us a row, 1M rows near pipe-timeout) before its first byte,
-- nor held whole in memory (a 100k-row answer peaked near 120 MB RSS). 1024 rows are 50-100 KB
-- for common rows: about a thousand crossings for a million rows. A part always ends at a line,
-- so a failure after it (LOG + FAIL, from Python or the watchdog) follows a whole line.
local stream
local STREAM_ROWS = 1024

-- The writer AXFR answers are streamed to, nil (the shell's subcommands) to render them whole.
-- writer(rows, length) gets the rows rendered so far, `length` bytes: on LuaJIT the address of
-- the answer buffer's memory, which it reads before it returns (ffi.cast("const char *", rows);
-- Python's ctypes.string_at), elsewhere their text.
function M.set_stream(writer)
  stream = writer
end

-- Renders a hook's result table into the answer text, or returns nil and the reason. Rows come
-- in `next` order, as native's lua_next gives them (the array part first, in order). `streamed`
-- sends the rows to `stream` as they are rendered; the text returned is then what is left.
local function render_result(hook, result, on_row, streamed)
  if type(result) ~= "table" then
    return nil, format("%s returned %s, expected a table of rows", hook, describe(result))
  end
  local answer, warnings = answer_buffer:reset(), {}
  local writer, pending = streamed and stream, 0
  for index, row in next, result do
    local ok, why = render_one(hook, index, row, answer, warnings, result_record, on_row)
    if not ok then
      return nil, why
    end
    if writer then
      pending = pending + 1
      if pending == STREAM_ROWS then
        stream_part(writer)
        pending = 0
      end
    end
  end
  for i = 1, #warnings do
    answer:put(warnings[i])
  end
  answer:put("END\n")
  return take_answer()
end

-- ---------------------------------------------------------------------------------------------
-- Calling the script. Errors are caught in Lua so a failing hook costs no Python exception;
-- the message names the script's file and line, as the operator needs it in pdns's log.

local script_chunk -- the chunk name of the script, set by M.capture

-- The innermost line of the script on the stack, as "file:line", and the file as Lua's messages
-- name it (shortened when the path is long).
local function script_position()
  for level = 3, 40 do
    local info = getinfo(level, "Sl")
    if not info then
      break
    end
    if info.source == script_chunk and info.currentline and info.currentline > 0 then
      return info.short_src .. ":" .. info.currentline, info.short_src
    end
  end
end

-- A debug hook the script sets fires only for the script's code, as natively, where everything
-- around the script is C++. Here lua2pipe's own Lua would run under it too, and a hook that
-- raises would fail lua2pipe's work (splitting the question, reading the rows, the error handler)
-- under a wrong name ("malformed question", "error in error handling"). So the debug.sethook the
-- script sees installs `gate`, which passes an event on only when it comes from a function that
-- is not lua2pipe's nor Python's (for a C function: its caller's), by a tail call, so that inside
-- the script's hook getinfo levels are as they would be without the gate. A hook set on a
-- coroutine (sethook(thread, ...)) is installed as given.
local OWN_CHUNKS = { ["=environment.lua"] = true, ["=dispatch.lua"] = true }
local script_hook -- the hook function the script set

local function gate(event, line)
  local info = getinfo(2, "S")
  if info and info.what == "C" then
    info = getinfo(3, "S")
  end
  if info and not OWN_CHUNKS[info.source] then -- no info: called from Python
    return script_hook(event, line)
  end
end

local function script_sethook(...)
  local hook, mask, count = ...
  if type(hook) ~= "function" then -- a thread first, no hook (clearing it), or an error to raise
    script_hook = nil
    return sethook(...)
  end
  script_hook = hook
  return sethook(gate, mask, count)
end

local function script_gethook(...)
  if select("#", ...) > 0 then
    return gethook(...)
  end
  local hook, mask, count = gethook()
  if hook == gate then
    hook = script_hook
  end
  return hook, mask, count
end

if type(G.debug) == "table" then
  G.debug.sethook, G.debug.gethook = script_sethook, script_gethook
end

-- Reasons end up on one LOG line: a message of megabytes (error(string.rep(...))) is cut here, in
-- O(1), before anything walks it.
local MAX_REASON_BYTES = 4096

local function error_handler(message)
  local text = message
  if type(message) ~= "string" then
    -- describe calls tostring, and an error object's __tostring may raise, or return a non-string
    -- (Lua 5.1 and LuaJIT pass that on): failing here would leave "error in error handling"
    local ok, described = pcall(describe, message)
    text = ok and type(described) == "string" and described
      or format(
        "a %s error value whose __tostring %s",
        type(message),
        ok and "returned a " .. type(described) or "raised an error"
      )
  end
  if #text > MAX_REASON_BYTES then
    text = format("%s... (%d bytes in all)", sub(text, 1, MAX_REASON_BYTES), #text)
  end
  local where, file = script_position()
  if where and sub(text, 1, #file + 1) ~= file .. ":" then -- not already "file:line: ..."
    text = where .. ": " .. text
  end
  return (gsub(text, "[%z\1-\31]", " "))
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
  if not ok then
    return nil, name .. " failed: " .. result
  end
  return true, result
end

local HOOK_NAMES = {
  "dns_lookup",
  "dns_list",
  "dns_get_all_domains",
  "dns_get_domaininfo",
  "dns_get_domain_metadata",
  "dns_get_all_domain_metadata",
  "dns_get_domain_keys",
  "dns_get_before_and_after_names_absolute",
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
  for _, name in ipairs(HOOK_NAMES) do
    hooks[name] = read_function(name)
  end
  local init = read_function("dns_init")
  if init then
    hooks.dns_init = init
    local ok, why = call("dns_init", init)
    if not ok then
      error(why, 0)
    end
  end
  hooks.dns_deinit = read_function("dns_deinit")
  if not hooks.dns_lookup then
    error("dns_lookup missing", 0)
  end
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
    if hooks[name] then
      defined[#defined + 1] = name
    end
  end
  if hooks.dns_init then
    defined[#defined + 1] = "dns_init"
  end
  if hooks.dns_deinit then
    defined[#defined + 1] = "dns_deinit"
  end
  return concat(defined, " "), dnssec == true
end

function M.set_abi(version)
  abi = version
end

function M.deinit()
  if hooks.dns_deinit then
    local ok, why = call("dns_deinit", hooks.dns_deinit)
    if not ok then
      return why
    end
  end
end

-- ---------------------------------------------------------------------------------------------
-- Questions.

local EMPTY_ADDRESS, EMPTY_NETWORK = "0.0.0.0", "0.0.0.0/0"

-- Zone names learnt from zone-walk SOA answers: below ABI 4 an AXFR line carries only the id.
local zone_names = {}
local function remember_zone(record)
  if record.code == 6 then
    zone_names[record.domain_id] = record.name_text
  end
end

-- dns_lookup as native lua2 calls it (modules/lua2backend/lua2api2.hh lookup), for both
-- protocols: qname and qtype from pdns's texts; ctx empty for pdns's own lookups (has_packet
-- false), else the client's address and the real remote. Returns true, the result and the
-- qtype; false and why the qname is malformed; or nil and the hook's failure.
local function call_lookup(qname_text, qtype_text, id, has_packet, remote, real_remote)
  local ok, qname = pcall(parse_name, qname_text)
  if not ok then
    return false, "invalid qname: " .. error_handler(qname)
  end
  local qtype = new_qtype(qtype_text)
  local ctx = {}
  if has_packet then
    ctx.source_address = remote
    ctx.real_source_address = real_remote
  end
  local result
  ok, result = call("dns_lookup", hooks.dns_lookup, qtype, qname, id, ctx)
  return ok, result, qtype
end
M.call_lookup = call_lookup

-- Q: qname, qtype and id as pdns sent them; remote, local and real remote as far as the ABI has
-- them (nil otherwise).
local function lookup(qname_text, qtype_text, id, remote, local_address, real_remote)
  local has_packet = remote ~= EMPTY_ADDRESS
    or (local_address and local_address ~= EMPTY_ADDRESS)
    or (real_remote and real_remote ~= EMPTY_NETWORK)
  if has_packet and not real_remote then
    -- below ABI 3 pdns sends no real remote; without ECS it is the remote as a Netmask
    real_remote = find(remote, ":", 1, true) and gsub(remote, "%%.*", "") .. "/128"
      or remote .. "/32"
  end
  local ok, result, qtype = call_lookup(qname_text, qtype_text, id, has_packet, remote, real_remote)
  if not ok then
    return nil, ok == false and "malformed question: " .. result or result
  end
  return render_result(
    "dns_lookup",
    result,
    id == -1 and qtype:getCode() == 6 and remember_zone or nil
  )
end
M.lookup = lookup

-- AXFR: the zone id, and the zone name from ABI 4 on.
local function list_zone(id, zone_text)
  if not hooks.dns_list then
    return nil, "dns_list missing - cannot do AXFR"
  end
  local target
  if zone_text then
    local ok, zone = pcall(parse_name, zone_text)
    if not ok then
      return nil, "malformed question: invalid zone name: " .. error_handler(zone)
    end
    target = zone
  elseif zone_names[id] then
    target = parse_name(zone_names[id])
  else
    return nil,
      format(
        "AXFR of zone id %s: the zone name is unknown (pdns sends it from "
          .. "pipe-abi-version 4 on)",
        integer_text(id)
      )
  end
  local ok, result = call("dns_list", hooks.dns_list, target, id)
  if not ok then
    return nil, result
  end
  if type(result) == "boolean" then
    return nil,
      format(
        "dns_list returned %s for %s: no such zone or not listable",
        tostring(result),
        target:toString()
      )
  end
  return render_result("dns_list", result, nil, true)
end
M.list = list_zone

-- A question line, split and checked here rather than in Python: one crossing per question.

local Q_FIELDS = { 6, 7, 8, 8, 8 } -- per ABI: ABI 2 adds the local address, ABI 3 the real remote

local function malformed(why, ...)
  return nil, "malformed question: " .. format(why, ...)
end

-- A zone id: decimal, fitting pdns's int.
local function zone_id(text)
  local length, first = #text, byte(text, 1) == 45 and 2 or 1 -- an optional "-"
  if length < first then
    return nil
  end
  for i = first, length do
    local code = byte(text, i)
    if code < 48 or code > 57 then
      return nil
    end
  end
  local id = tonumber(text)
  if id < -2147483648 or id > 2147483647 then
    return nil
  end
  return id + 0 -- "-0" is 0 (a float -0 on LuaJIT and 5.1, not on 5.3)
end

-- The fields of the line in hand, reused from line to line: only fields[1..field_count] are its.
local fields, field_count = {}, 0
local function split_fields(line)
  local count, start = 0, 1
  while true do
    local tab = find(line, "\t", start, true)
    count = count + 1
    if not tab then
      fields[count] = sub(line, start)
      field_count = count
      return count
    end
    fields[count] = sub(line, start, tab - 1)
    start = tab + 1
  end
end

local function answer_line(line)
  local count = split_fields(line)
  local tag = fields[1]
  if tag == "Q" then
    if count ~= Q_FIELDS[abi] then
      return malformed("Q at pipe ABI %d has %d fields, this one %d", abi, Q_FIELDS[abi], count)
    end
    if fields[3] ~= "IN" then
      return malformed("qclass '%s' is not IN", fields[3])
    end
    local id = zone_id(fields[5])
    if not id then
      return malformed("zone id '%s' is not a 32-bit integer", fields[5])
    end
    local answer, why = lookup(
      fields[2],
      fields[4],
      id,
      fields[6],
      abi >= 2 and fields[7] or nil,
      abi >= 3 and fields[8] or nil
    )
    if answer then
      return answer
    end
    return nil, why, fields[5] == "-1" and fields[4] == "SOA" -- as is_zone_walk in lua2pipe.py
  elseif tag == "AXFR" then
    local expected = abi >= 4 and 3 or 2
    if count ~= expected then
      return malformed("AXFR at pipe ABI %d has %d fields, this one %d", abi, expected, count)
    end
    local id = zone_id(fields[2])
    if not id then
      return malformed("zone id '%s' is not a 32-bit integer", fields[2])
    end
    return list_zone(id, abi >= 4 and fields[3] or nil)
  end
  return false
end
M.answer = answer_line

-- ---------------------------------------------------------------------------------------------
-- backend-cmd, as native lua2 does it: the first word names a function the script defined, which
-- is called with the rest of the text as one string; its result is converted to a string.

-- Which script functions `CMD NAME ARGS` may call: Lua functions the script defined (not C
-- functions such as os.execute or dofile, even under another name, nor the environment's).
local function script_defined(name)
  local fn = G[name]
  if type(fn) ~= "function" or fn == before_script[name] then
    return false
  end
  local info = getinfo(fn, "S")
  return info.what ~= "C" and sub(info.source, 1, 1) ~= "="
end

M.is_script_function = script_defined

-- The functions `CMD NAME ARGS` can call, space-separated and sorted.
function M.script_functions()
  local names = {}
  for name in next, G do
    if type(name) == "string" and script_defined(name) then
      names[#names + 1] = name
    end
  end
  sort(names)
  return concat(names, " ")
end

-- Anything but a function the script defined is "<name>not found", native's words (no space).
function M.call_command(name, argument)
  if not script_defined(name) then
    return nil, name .. "not found"
  end
  local ok, result = call(name, G[name], argument)
  if not ok then
    return nil, result
  end
  result = text_of(result)
  if type(result) ~= "string" then
    return nil, format("%s returned %s, expected a string", name, describe(result))
  end
  return result
end

-- ---------------------------------------------------------------------------------------------
-- Memory: the heap size for CMD stats, and the cap of --max-memory.

function M.memory_kb()
  return collectgarbage("count")
end

-- --max-memory. LuaJIT has no emergency collection: when the allocator refuses, the garbage
-- stays, and the next string lupa pushes outside a protected call (the next question line)
-- would abort the process ("PANIC: unprotected error in call to Lua API"). So with a cap, each
-- answer leaves the heap under the cap minus a reserve (collecting when over it); when live data
-- alone is over, the state cannot be recovered: the question fails and asks for a fresh state.
local soft_limit_kb = huge

function M.set_memory_limit(kb)
  soft_limit_kb = kb
end

-- Whether the heap is still over the soft limit after a full collection.
local function heap_full()
  if collectgarbage("count") <= soft_limit_kb then
    return false
  end
  collectgarbage("collect")
  return collectgarbage("count") > soft_limit_kb
end

-- An answer function under --max-memory (M.answer_capped here and in remote.lua): its results
-- when it succeeded and left the heap under the soft limit; else nil, the reason, what
-- `context(line, ok, extra)` gives pdns's framing (the pipe's zone-walk flag, remote's qname),
-- and whether live data fills the heap (Python then loads a fresh state). A memory error while
-- the result is read (outside the hook's own xpcall) is caught here, where the garbage can
-- still be collected. `hook(line)` names the hook of a question whose result raised.
local function capped(answer, hook, context)
  return function(line)
    local ok, result, why, extra = pcall(answer, line)
    local full = result ~= false and heap_full()
    if ok and not full then
      if result ~= nil then
        return result
      end -- text or false, alone: lupa turns several into a tuple
      return result, why, extra
    end
    if ok then
      why = format(
        "Lua heap over --max-memory after a full collection (%d KB live)",
        floor(collectgarbage("count"))
      )
    else
      why = format(
        "%s result could not be read: %s",
        hook(line),
        type(result) == "string" and result or "error"
      )
    end
    if full then
      why = why .. ": restarting with a fresh Lua state"
    end
    return nil, why, context(line, ok, extra), full
  end
end
M.capped = capped

-- M.answer under --max-memory: its results, or nil, reason, zone_walk, restart.
M.answer_capped = capped(answer_line, function()
  return fields[1] == "Q" and "dns_lookup" or "dns_list"
end, function()
  return field_count >= 5 and fields[1] == "Q" and fields[4] == "SOA" and fields[5] == "-1"
end)

-- ---------------------------------------------------------------------------------------------
-- CMD built-ins (lua2pipe.py, section CMD): the hooks pdns never calls through the pipe. Each
-- cmd_* function reads the hook's result the way native lua2 reads it (upstream's rules where
-- 4.7.3 is stricter, as for rows) and returns it normalised into plain tables of strings,
-- numbers and booleans for Python to format, as two values:
--   result, warnings   the normalised result and an array of warning strings
--   false, reason      the hook answered false/true: "not found or not supported"
--   nil, reason        the hook is missing or raised, or its result breaks the contract
-- Python makes each reason and warning one line.

local function hook_missing(name)
  return nil, name .. " missing: the script does not define it"
end

local function cmd_name(text, what)
  local ok, name = pcall(parse_name, text)
  if not ok then
    return nil, format("invalid %s %s: %s", what, (describe(text)), error_handler(name))
  end
  return name
end

-- The first value of a hook call that answered a boolean ("not found or not supported").
local function not_found(hook, result, subject)
  return false,
    format("%s returned %s for %s: not found or not supported", hook, tostring(result), subject)
end

-- The start every zone command shares: the hook must exist, ZONE must be a name, the call must
-- not raise, and a boolean means "not found" (native's false). Returns true, the result and the
-- zone; or false, then what the command returns (nil for an error, false for not found) and why.
local function call_zone_hook(name, zone_text, argument)
  local hook = hooks[name]
  if not hook then
    return false, hook_missing(name)
  end
  local zone, why = cmd_name(zone_text, "zone")
  if not zone then
    return false, nil, why
  end
  local ok, result = call(name, hook, zone, argument)
  if not ok then
    return false, nil, result
  end
  if type(result) == "boolean" then
    return false, not_found(name, result, zone:toString() .. (argument and " " .. argument or ""))
  end
  return true, result, zone
end

-- A CMD function over a zone hook whose answer must be a table (`shape` describes it for the
-- message): read(result) gives the command's answer; a failed or missing hook answers as
-- call_zone_hook says.
local function table_command(name, shape, read)
  return function(zone_text)
    local ok, result, why = call_zone_hook(name, zone_text)
    if not ok then
      return result, why
    elseif type(result) ~= "table" then
      return nil, format("%s returned %s, expected %s", name, (describe(result)), shape)
    end
    return read(result)
  end
end

-- A value native's table readers cannot convert poisons the whole result (LuaContext.hpp's table
-- and variant readers fail as a whole).
local function convertible(value)
  local kind = type(value)
  return kind == "string" or kind == "number" or kind == "boolean" or is_name(value)
end

-- Domain info (modules/lua2backend/lua2api2.hh parseDomainInfo). Values fit variant<bool, long,
-- string, vector<string>>: a boolean is always bad_get, and a numeric string is read as a long.
-- Kinds by their upper-case names, as DomainInfo::stringToKind reads them (pdns/dnsbackend.hh,
-- case-insensitive): each kind's own name, and MASTER and SLAVE for PRIMARY and SECONDARY.
local KINDS = { MASTER = "primary", SLAVE = "secondary" }
for _, kind in ipairs({ "native", "primary", "secondary", "producer", "consumer" }) do
  KINDS[upper(kind)] = kind
end
local INFO_INTEGERS = { id = true, serial = true, notified_serial = true, last_check = true }

local function read_info(hook, zone, info, warnings)
  local zone_text = zone:toString()
  if type(info) ~= "table" then
    return nil, format("%s: info for %s is %s, expected a table", hook, zone_text, (describe(info)))
  end
  local out = {
    zone = zone_text,
    id = -1,
    kind = "native",
    serial = 0,
    notified_serial = 0,
    last_check = 0,
    account = "",
    masters = {},
  }
  for key, value in next, info do
    local where = format("%s: %s %s value %s", hook, zone_text, tostring(key), (describe(value)))
    if type(value) == "boolean" then
      return nil, where .. " is a boolean; native lua2 cannot read one here (bad_get)"
    elseif INFO_INTEGERS[key] then
      local n = to_integer(value)
      if n == nil then
        return nil, where .. " is not an integer"
      end
      if key == "id" then
        n = wrap_signed32(n)
      elseif key ~= "last_check" then
        n = wrap_unsigned32(n)
      end
      out[key] = n
    elseif key == "kind" then
      if type(value) ~= "string" or to_integer(value) ~= nil then
        return nil, where .. " is not a kind name"
      end
      out.kind = KINDS[upper(value)] or "native"
      if not KINDS[upper(value)] then
        warnings[#warnings + 1] = format(
          "%s: %s kind %s is not native, primary (master), "
            .. "secondary (slave), producer or consumer; pdns takes it as native",
          hook,
          zone_text,
          (describe(value))
        )
      end
    elseif key == "account" then
      if type(value) ~= "string" and type(value) ~= "number" then
        return nil, where .. " is not a string"
      end
      out.account = text_of(value)
    elseif key == "masters" then
      if type(value) ~= "table" then
        return nil, where .. " is not a table of addresses"
      end
      for _, master in next, value do
        if type(master) ~= "string" then
          return nil,
            format("%s: %s masters entry %s is not a string", hook, zone_text, (describe(master)))
        end
        out.masters[#out.masters + 1] = master
      end
      sort(out.masters)
      warnings[#warnings + 1] = format(
        "%s: %s masters is a table, which native lua2 cannot read " .. "(it fails the whole info)",
        hook,
        zone_text
      )
    elseif not convertible(value) then
      return nil, where .. " cannot be converted (native fails the whole info)"
    else
      warnings[#warnings + 1] = format("Unsupported key '%s' in domaininfo result", tostring(key))
    end
  end
  return out
end

-- Why a hook's result entry is not a table at an array index (native reads such results as
-- vector<pair<int, table>>), or nil when it is one.
local function array_entry_error(hook, plural, index, entry)
  if to_integer(index) == nil or type(entry) ~= "table" then
    return format(
      "%s result has %s = %s; %s must be tables in an array",
      hook,
      (describe(index)),
      (describe(entry)),
      plural
    )
  end
end

-- Without dns_get_domaininfo native falls back to an SOA lookup (getAuth): zone and serial,
-- and (upstream) the id from the SOA row, which is also the id the pipe's zone walk finds.
local function soa_info(zone, warnings)
  local ok, result = call("dns_lookup", hooks.dns_lookup, new_qtype("SOA"), zone, -1, {})
  if not ok then
    return nil, result
  end
  if type(result) ~= "table" then
    return nil, format("dns_lookup returned %s, expected a table of rows", (describe(result)))
  end
  local found, record = nil, {}
  for index, row in next, result do
    local not_entry = array_entry_error("dns_lookup", "rows", index, row)
    if not_entry then
      return nil, not_entry
    end
    local row_ok, why = read_row(index, row, record, warnings)
    if not row_ok then
      return nil, "dns_lookup " .. why
    end
    if record.code ~= 6 then
      return nil,
        format(
          "dns_lookup answered a %s row to the SOA question for %s (pdns: Got "
            .. "non-SOA record when asking for SOA)",
          qtype_name(record.code),
          zone:toString()
        )
    end
    found = { id = record.domain_id, content = record.content } -- the last SOA wins, as in pdns
  end
  if not found then
    return false,
      format("dns_get_domaininfo missing and dns_lookup has no SOA for %s", zone:toString())
  end
  local serial = match(found.content, "^%s*%S+%s+%S+%s+(%S+)")
  return {
    zone = zone:toString(),
    id = found.id,
    kind = "native",
    serial = serial and to_integer(serial) and wrap_unsigned32(to_integer(serial)) or 0,
    notified_serial = 0,
    last_check = 0,
    account = "",
    masters = {},
  }
end

function M.cmd_domaininfo(zone_text)
  local zone, why = cmd_name(zone_text, "zone")
  if not zone then
    return nil, why
  end
  local warnings = {}
  if not hooks.dns_get_domaininfo then
    local info
    info, why = soa_info(zone, warnings)
    if not info then
      return info, why
    end
    info.source = "soa"
    return info, warnings
  end
  local ok, result = call("dns_get_domaininfo", hooks.dns_get_domaininfo, zone)
  if not ok then
    return nil, result
  end
  if type(result) == "boolean" then
    return not_found("dns_get_domaininfo", result, zone:toString())
  end
  local info
  info, why = read_info("dns_get_domaininfo", zone, result, warnings)
  if not info then
    return nil, why
  end
  info.source = "dns_get_domaininfo"
  return info, warnings
end

function M.cmd_all_domains()
  if not hooks.dns_get_all_domains then
    return hook_missing("dns_get_all_domains")
  end
  local ok, result = call("dns_get_all_domains", hooks.dns_get_all_domains)
  if not ok then
    return nil, result
  end
  if type(result) ~= "table" then
    return nil,
      format(
        "dns_get_all_domains returned %s, expected a table {[newDN(zone)] = info}"
          .. " (native accepts neither false nor nil)",
        (describe(result))
      )
  end
  local list, warnings = {}, {}
  for key, info in next, result do
    if not is_name(key) then
      return nil,
        format(
          "dns_get_all_domains result key %s is a %s, not a DNSName: native lua2 "
            .. "needs newDN(...) keys",
          (describe(key)),
          type(key)
        )
    end
    local entry, why = read_info("dns_get_all_domains", key, info, warnings)
    if not entry then
      return nil, why
    end
    entry.source = "dns_get_all_domains"
    list[#list + 1] = entry
  end
  return list, warnings
end

-- The values of {key, value} pairs in key order (an array's order, whatever lua_next gave).
local function values_by_key(pairs_list)
  sort(pairs_list, function(a, b)
    return a[1] < b[1]
  end)
  local values = {}
  for i, pair in ipairs(pairs_list) do
    values[i] = pair[2]
  end
  return values
end

-- An array of strings as native reads it (vector<pair<int, string>>): integer keys, and string
-- values (numbers are stringified). Returned in key order.
local function read_strings(what, value)
  if type(value) ~= "table" then
    return nil, format("%s is %s, expected an array of strings", what, (describe(value)))
  end
  local pairs_in_order = {}
  for key, item in next, value do
    local index = to_integer(key)
    if index == nil then
      return nil, format("%s has key %s; values must be in an array", what, (describe(key)))
    end
    item = text_of(item)
    if type(item) ~= "string" then
      return nil, format("%s value %s is not a string", what, (describe(item)))
    end
    pairs_in_order[#pairs_in_order + 1] = { index, item }
  end
  return values_by_key(pairs_in_order)
end

-- One metadata kind: an array of strings.
function M.cmd_metadata(zone_text, kind)
  local ok, result, why = call_zone_hook("dns_get_domain_metadata", zone_text, kind)
  if not ok then
    return result, why
  end
  local values
  values, why = read_strings("dns_get_domain_metadata result", result)
  if not values then
    return nil, why
  end
  return values, {}
end

-- All metadata: an array of {kind, {values}}, sorted by kind.
M.cmd_all_metadata = table_command(
  "dns_get_all_domain_metadata",
  "{KIND = {values}}",
  function(result)
    local list = {}
    for kind, values in next, result do
      if type(kind) ~= "string" and type(kind) ~= "number" then
        return nil,
          format("dns_get_all_domain_metadata result key %s is not a kind name", (describe(kind)))
      end
      local kind_text = text_of(kind)
      local strings, why = read_strings("dns_get_all_domain_metadata " .. kind_text, values)
      if not strings then
        return nil, why
      end
      list[#list + 1] = { kind_text, strings }
    end
    sort(list, function(a, b)
      return a[1] < b[1]
    end)
    return list, {}
  end
)

-- Keys (modules/lua2backend/lua2api2.hh getDomainKeys): an array of {id, flags, active, published,
-- content}, in array order.
local KEY_FIELDS =
  { id = "integer", flags = "integer", active = "flag", published = "flag", content = "string" }

M.cmd_keys = table_command("dns_get_domain_keys", "an array of key tables", function(result)
  local ordered, warnings = {}, {}
  for index, key in next, result do
    local not_entry = array_entry_error("dns_get_domain_keys", "keys", index, key)
    if not_entry then
      return nil, not_entry
    end
    local out = { id = 0, flags = 0, active = false, published = true, content = "" }
    local seen = {}
    for field, value in next, key do
      local expected = KEY_FIELDS[field]
      local where = format(
        "dns_get_domain_keys key %s: %s value %s",
        tostring(index),
        tostring(field),
        (describe(value))
      )
      if expected == "integer" then
        local n = to_integer(value)
        if n == nil then
          return nil, where .. " is not an integer"
        end
        out[field] = wrap_unsigned32(n)
      elseif expected == "flag" then
        if type(value) == "boolean" then
          out[field] = value
        elseif to_integer(value) ~= nil then
          out[field] = to_integer(value) ~= 0
        else
          return nil, where .. " is not a boolean"
        end
      elseif expected == "string" then
        if type(value) ~= "string" then
          return nil, where .. " is not a string"
        end
        out.content = value
      elseif not convertible(value) then
        return nil, where .. " cannot be converted (native fails the whole result)"
      else
        warnings[#warnings + 1] =
          format("[lua2] Unsupported key '%s' in keydata result", tostring(field))
      end
      seen[field] = true
    end
    for _, field in ipairs({ "id", "flags", "active", "content" }) do
      if not seen[field] then
        warnings[#warnings + 1] = format(
          "dns_get_domain_keys key %s has no %s (pdns 4.7.3 " .. "reads uninitialised memory then)",
          tostring(index),
          field
        )
      end
    end
    ordered[#ordered + 1] = { to_integer(index), out }
  end
  return values_by_key(ordered), warnings
end)

-- NSEC names (modules/lua2backend/lua2api2.hh getBeforeAndAfterNamesAbsolute): exactly the three
-- keys unhashed, before and after, each a DNSName or a string parsed as one.
local NSEC_KEYS = { unhashed = true, before = true, after = true }

function M.cmd_nsec(id, name_text)
  local hook = "dns_get_before_and_after_names_absolute"
  if not hooks[hook] then
    return hook_missing(hook)
  end
  local qname, why = cmd_name(name_text, "name")
  if not qname then
    return nil, why
  end
  local ok, result = call(hook, hooks[hook], id, qname)
  if not ok then
    return nil, result
  end
  if type(result) == "boolean" then
    return not_found(hook, result, integer_text(id) .. " " .. qname:toString())
  end
  if type(result) ~= "table" then
    return nil,
      format("%s returned %s, expected {unhashed=, before=, after=}", hook, (describe(result)))
  end
  local count, out = 0, {}
  for _ in next, result do
    count = count + 1
  end
  if count ~= 3 then
    return nil,
      format(
        "%s result has %d entries, expected exactly unhashed, before and after "
          .. "(native: Invalid result, expected array with 3 items; pdns gets false)",
        hook,
        count
      )
  end
  for key, value in next, result do
    if not NSEC_KEYS[key] then
      return nil,
        format(
          "%s result has unexpected key %s (native: Invalid result, unexpected "
            .. "key; pdns gets false)",
          hook,
          (describe(key))
        )
    end
    if is_name(value) then
      out[key] = value:toString()
    elseif type(value) == "string" then
      local name
      name, why = cmd_name(value, hook .. " " .. key)
      if not name then
        return nil, why
      end
      out[key] = name:toString()
    else
      return nil,
        format("%s %s value %s is neither a DNSName nor a string", hook, key, (describe(value)))
    end
  end
  return out, {}
end

function M.cmd_set_notified(id, serial)
  if not hooks.dns_set_notified then
    return nil,
      "dns_set_notified missing: the script does not define it (native lua2 skips "
        .. "the call silently)"
  end
  local ok, result = call("dns_set_notified", hooks.dns_set_notified, id, serial)
  if not ok then
    return nil, result
  end
  return true, {}
end

-- ---------------------------------------------------------------------------------------------
-- What lua/remote.lua (pdns's remote backend protocol) shares with the pipe: the environment,
-- the captured hooks, the protected call, the row reader, the answer buffer and --max-memory's
-- heap check, so both protocols call hooks and check rows exactly alike and differ only in
-- rendering.

M.env = env
M.hooks = hooks
M.call = call
M.read_entry = read_entry
M.take_answer = take_answer
M.describe = describe
M.heap_full = heap_full
M.answer_buffer = answer_buffer

return M
