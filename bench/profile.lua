-- bench/profile.lua: LuaJIT's sampling profiler around lua2pipe's dispatcher (make profile).
--
-- The chunk returns one function, profile(answer, lines, count, rounds): it calls answer(line)
-- for lines[1..count], `rounds` times, under jit.profile, and returns as text the share of
-- samples per function, then per source line and VM state, most sampled first. VM states:
-- N compiled code, I interpreter, C a C function, G garbage collector, J the JIT compiler.

local profile = require("jit.profile")

local SAMPLE_INTERVAL = "i1" -- a sample every millisecond
local SHOWN = 20

local function ranking(title, samples_at, total)
  local ranked = {}
  for where, samples in pairs(samples_at) do ranked[#ranked + 1] = { where, samples } end
  table.sort(ranked, function(a, b) return a[2] > b[2] end)
  local lines = { title }
  for i = 1, math.min(SHOWN, #ranked) do
    lines[#lines + 1] = string.format("%5.1f%%  %s", ranked[i][2] * 100 / total, ranked[i][1])
  end
  return table.concat(lines, "\n")
end

return function(answer, lines, count, rounds)
  local by_function, by_line, total = {}, {}, 0
  profile.start("l" .. SAMPLE_INTERVAL, function(thread, samples, vmstate)
    local name = profile.dumpstack(thread, "pf", 1)
    local line = profile.dumpstack(thread, "pl", 1) .. " [" .. vmstate .. "]"
    by_function[name] = (by_function[name] or 0) + samples
    by_line[line] = (by_line[line] or 0) + samples
    total = total + samples
  end)
  for _ = 1, rounds do
    for i = 1, count do answer(lines[i]) end
  end
  profile.stop()
  return string.format("%d samples\n\n", total)
    .. ranking("by function:", by_function, total) .. "\n\n"
    .. ranking("by line [VM state]:", by_line, total)
end
