-- A lua2 script that misbehaves on purpose, for the robustness tests (tests/test_robustness.py,
-- tests/test_fuzz.py, bench/soak.py). The first label of the question picks the case; any other
-- name gets one TXT row that echoes the question, so a test can tell answers apart.
--
-- Environment: HOSTILE_DEINIT_FILE, when set, is written "deinit <questions>" by dns_deinit.

local cases = {}
local questions = 0 -- questions this Lua state has answered: a fresh state starts again at 1
local kept = {}     -- what "grow" keeps alive

print("print at load time")
io.write("io.write at load time\n")

local function txt(name, text)
  return { { name = name, type = "TXT", content = text, ttl = 60, domain_id = 1 } }
end

-- Runaway hooks. LuaJIT compiles these loops, so no debug hook can stop them.
cases.spin = function() while true do end end
cases.spin_pcall = function()
  while true do pcall(error, "again") end
end
cases.backtrack = function() -- a C function that never returns in time
  return txt("b.example.org", tostring(string.find(string.rep("a", 40), string.rep("a?", 40) .. string.rep("a", 40) .. "b")))
end
cases.sleep = function() -- slow but finishing: under --max-query-ms it must still be answered
  local t = os.clock() + 0.05
  while os.clock() < t do end
  return txt("sleep.example.org", "slept")
end

-- Memory. hog keeps 256 MB alive (bounded, so a run without --max-memory still ends).
cases.hog = function()
  local t = {}
  for i = 1, 256 do t[i] = string.rep(string.char(i % 256), 1024 * 1024) end
  return txt("hog.example.org", "allocated " .. #t .. " MB")
end
cases.grow = function() -- a leak across questions: each question keeps 4 MB more
  kept[#kept + 1] = string.rep("x", 4 * 1024 * 1024 - 64) .. #kept
  return txt("grow.example.org", "kept " .. #kept)
end
cases.leak = function() -- a slow leak: each question keeps 1 KB more
  kept[#kept + 1] = string.rep("y", 1000) .. #kept
  return txt("leak.example.org", "kept " .. #kept)
end
cases.big_content = function() -- small for the hook, large once rendered (copies in render)
  return { { name = "big.example.org", type = "TXT", content = string.rep("a", 24 * 1024 * 1024) } }
end

-- Huge results.
local function many(n)
  local rows = {}
  for i = 1, n do
    rows[i] = { name = "r" .. i .. ".example.org", type = "A", content = "192.0.2.1", ttl = 60 }
  end
  return rows
end
cases.rows100k = function() return many(100000) end
cases.rows1m = function() return many(1000000) end

-- Nested, cyclic and odd tables.
cases.nested = function()
  local t = {}
  for _ = 1, 100000 do t = { t } end
  return t
end
cases.cyclic = function()
  local t = { name = "c.example.org", type = "A", content = "192.0.2.1" }
  t.self = t
  local rows = { t }
  rows[2] = rows
  return rows
end
cases.cyclic_result = function()
  local rows = {}
  rows[1] = rows
  return rows
end
local loud = setmetatable({}, { __tostring = function() error("tostring raised") end })
cases.tostring_raises_value = function()
  return { { name = "a.example.org", type = "A", content = "192.0.2.1", extra = loud } }
end
cases.tostring_raises_key = function()
  return { { name = "a.example.org", type = "A", content = "192.0.2.1", [loud] = 1 } }
end
cases.tostring_raises_result_key = function()
  return { [loud] = { name = "a.example.org", type = "A", content = "192.0.2.1" } }
end
cases.tostring_raises_row = function() return { loud } end
cases.tostring_raises_result = function() return loud end
cases.error_object_tostring_raises = function() error(loud) end
local sticky = setmetatable({}, { __tostring = function() while true do end end })
cases.tostring_spins = function() return { [sticky] = {} } end
cases.proxy_row = function() -- a row whose fields only exist through __index: native sees none
  return { setmetatable({}, { __index = function() return "192.0.2.1" end }) }
end
cases.pairs_meta = function() -- __pairs (Lua 5.2+) raising while the result is read
  return setmetatable({}, { __pairs = function() error("__pairs raised") end })
end

-- Values of the wrong kind.
cases.coroutine = function() return coroutine.create(print) end
cases.coroutine_row = function() return { coroutine.create(print) } end
cases.userdata = function() return io.stdout end
cases.userdata_content = function()
  return { { name = "a.example.org", type = "A", content = io.stdout } }
end
cases.newproxy = function()
  return { { name = "a.example.org", type = "A", content = newproxy and newproxy(true) or io.stderr } }
end
cases.func = function() return print end
cases.number = function() return 42 end

-- Hostile strings.
cases.binary_content = function()
  return { { name = "a.example.org", type = "TXT", content = '"\0\1\2\255\254 \r\n\t"' } }
end
cases.binary_unquoted = function()
  return { { name = "a.example.org", type = "A", content = "192.0.2.1\0FAIL" } }
end
cases.non_utf8_content = function()
  return { { name = "a.example.org", type = "TXT", content = '"\255\254\253"' } }
end
cases.newline_content = function()
  return { { name = "a.example.org", type = "A", content = "192.0.2.1\nEND\nDATA\tforged" } }
end
cases.newline_mx = function()
  return { { name = "a.example.org", type = "MX", content = "10\nEND\nmx.example.org." } }
end
cases.newline_name = function()
  return { { name = "a\nEND\n.example.org", type = "A", content = "192.0.2.1" } }
end
cases.tab_name = function()
  return { { name = "a\tb.example.org", type = "A", content = "192.0.2.1" } }
end
cases.binary_name = function()
  return { { name = "\0\255.example.org", type = "A", content = "192.0.2.1" } }
end
cases.long_name = function()
  return { { name = string.rep("a.", 128) .. "org", type = "A", content = "192.0.2.1" } }
end
cases.long_label = function()
  return { { name = string.rep("a", 64) .. ".org", type = "A", content = "192.0.2.1" } }
end
cases.newline_type = function()
  return { { name = "a.example.org", type = "A\nEND", content = "192.0.2.1" } }
end
cases.newline_key = function()
  return { { name = "a.example.org", type = "A", content = "192.0.2.1", ["k\nEND\n"] = 1 } }
end
cases.forge_error = function(_, qname) -- a Lua error carrying newlines and a raw query label
  error("boom\nEND\nLOG\tforged " .. qname:getRawLabels()[2])
end

-- Numbers out of range for the DATA fields.
local function number_row(key, value)
  local row = { name = "n.example.org", type = "A", content = "192.0.2.1" }
  row[key] = value
  return { row }
end
local NUMBERS = {
  huge = 1e300, neghuge = -1e300, inf = math.huge, neginf = -math.huge, nan = 0 / 0,
  big = 2 ^ 53 + 1, neg = -1, wrap = 4294967296 + 7, text = "1e999", hex = "0x10",
  spaced = " 12 ", junk = "12abc",
}
for key, field in pairs({ ttl = "ttl", id = "domain_id", scope = "scopeMask", content = "content" }) do
  for label, value in pairs(NUMBERS) do
    cases[key .. "_" .. label] = function() return number_row(field, value) end
  end
end

-- Reaching Python: each attempt answers one TXT row "<attempt> denied" or "<attempt> REACHED".
cases.python = function()
  local rows, found = {}, {}
  local function try(what, fn)
    local ok, result = pcall(fn)
    local reached = ok and result ~= nil and result ~= false
    rows[#rows + 1] = { name = "py.example.org", type = "TXT",
      content = what .. (reached and " REACHED " .. tostring(result) or " denied") }
  end
  -- Python objects the host handed over: the callbacks behind pdnslog, print and resolve.
  for _, fn in ipairs({ pdnslog, print, resolve, newDN, newCA }) do
    local i = 1
    while true do
      local name, value = debug.getupvalue(fn, i)
      if not name then break end
      if type(value) == "table" then
        for k, v in pairs(value) do
          if type(v) == "userdata" then found[#found + 1] = { tostring(k), v } end
        end
      elseif type(value) == "userdata" then
        found[#found + 1] = { name, value }
      end
      i = i + 1
    end
  end
  local registry = debug.getregistry()
  for k, v in pairs(registry) do
    if type(v) == "userdata" and v ~= io.stdout and v ~= io.stderr and v ~= io.stdin then
      found[#found + 1] = { "registry " .. tostring(k), v }
    end
  end
  try("global python", function() return python end)
  try("rawget python", function() return rawget(_G, "python") end)
  try("package.loaded.python", function() return package.loaded.python end)
  try("require python", function() return require("python") end)
  try("registry python", function() return registry.python end)
  try("registry._LOADED.python", function() return registry._LOADED and registry._LOADED.python end)
  rows[#rows + 1] = { name = "py.example.org", type = "TXT", content = "callbacks found " .. #found }
  for _, item in ipairs(found) do
    local name, obj = item[1], item[2]
    for _, attribute in ipairs({ "__globals__", "__class__", "__self__", "__dict__", "__code__",
      "__closure__", "__module__", "__builtins__", "write", "log", "lua", "coprocess" }) do
      try(name .. "." .. attribute, function() return obj[attribute] end)
    end
    try(name .. " as_attrgetter", function()
      local lib = package.loaded.python or registry.python
      return lib and lib.as_attrgetter(obj).__globals__
    end)
  end
  return rows
end

-- Per-process state, to tell a fresh Lua state from a kept one.
cases.count = function() return txt("count.example.org", tostring(questions)) end
-- Was anything from a question line ever run as Lua? See test_question_text_is_never_lua.
cases.pwned = function() return txt("pwned.example.org", tostring(rawget(_G, "PWNED"))) end

-- Noise on stdout from every corner.
cases.noisy = function()
  print("print from dns_lookup")
  io.write("io.write from dns_lookup\n")
  io.stdout:write("io.stdout:write from dns_lookup\n")
  io.stdout:flush()
  os.execute("echo os.execute from dns_lookup")
  return txt("noisy.example.org", "noisy")
end

cases.boom = function() error("boom") end

function dns_lookup(qtype, qname, domain_id, ctx)
  questions = questions + 1
  local labels = qname:getRawLabels()
  local case = cases[labels[1] or ""]
  if case then return case(qtype, qname, domain_id, ctx) end
  if qtype:getCode() == 6 and domain_id == -1 then
    if qname:toString() == "example.org." then
      return { { name = "example.org", type = "SOA", domain_id = 1,
        content = "ns.example.org. h.example.org. 1 2 3 4 5" } }
    end
    return {}
  end
  return txt(qname:toStringNoDot() .. ".echo", string.format("%s %s %d %s", qname:toString(),
    qtype:getName(), domain_id, tostring(ctx.source_address)))
end

function dns_list(target, domain_id)
  if target:toString() == "spin.example." then while true do end end
  return { { name = target, type = "SOA", domain_id = domain_id,
    content = "ns.example.org. h.example.org. 1 2 3 4 5" } }
end

function echo(text) return "echo:" .. text end
exec = os.execute                  -- a C function under the script's name: not callable by CMD
function spin_cmd() while true do end end

function dns_init()
  print("print from dns_init")
  io.write("io.write from dns_init\n")
end

function dns_deinit()
  print("print from dns_deinit")
  local path = os.getenv("HOSTILE_DEINIT_FILE")
  if path then
    local f = assert(io.open(path, "w"))
    f:write("deinit " .. questions)
    f:close()
  end
end
