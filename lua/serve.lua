-- lua2pipe's serving loop on LuaJIT (lua2pipe.py, LuaLoopCoprocess): the protocol read,
-- split, dispatched and answered without returning to Python for each question.
--
-- Python stays the supervisor (start-up, HELO, the watchdog thread, CMD and every other rare
-- path, restarts); this loop reads the protocol's input with read(2) into a buffer, answers the
-- lines it can through the protocol's answer function (the pipe's Q and AXFR in dispatch.lua,
-- remote mode's lookups in remote.lua), writes each answer with one write(2), and returns to
-- Python with the line in hand for everything else. The loop and Python's threads
-- share one C struct (lua2pipe_shared, lua2pipe.py LoopShared, allocated by Python: it and the
-- buffer outlive the Lua state across reloads and fresh states): the question's start time the
-- watchdog polls, the counters, the chores flag, the unread input, and the mutex that makes
-- "answer this question" happen once, by the loop or by the watchdog. make profile (bench/zone.lua,
-- pdns's captured questions, two runs at a load average of 9): the loop alone costs 0.41-0.44 us a
-- question against Python's 1.26-1.35, and lua2pipe as it runs 2.85-3.28 against 4.31-4.37.
--
-- The chunk is called as chunk(dispatch) before the script runs, so its C declarations come first
-- and the functions below are captured as they were (a script may assign over ffi's fields).

local dispatch = ...
local ffi = require("ffi")

-- Pointer parameters are void *: a script that declares the same functions later with its own
-- struct types (LuaJIT keeps the first declaration) can still pass them.
ffi.cdef([[
typedef struct {
  unsigned char lock[64];
  double busy_since;
  double questions;
  double failures;
  double lists;
  double latency_count;
  int32_t chores;
  int32_t input_fd;
  int32_t output_fd;
  int32_t capacity;
  int32_t start;
  int32_t stop;
  int32_t line_start;
  int32_t line_length;
  unsigned char *buffer;
  double latencies[4096];
} lua2pipe_shared;
typedef struct { long seconds; long nanoseconds; } lua2pipe_timespec;
typedef struct { int fd; short events; short revents; } lua2pipe_pollfd;
ssize_t read(int fd, void *buf, size_t count);
ssize_t write(int fd, const void *buf, size_t count);
void *memchr(const void *s, int c, size_t n);
void *memmove(void *dest, const void *src, size_t n);
int clock_gettime(int clock, void *time);
int poll(void *fds, unsigned long nfds, int timeout);
int pthread_mutex_lock(void *mutex);
int pthread_mutex_unlock(void *mutex);
char *strerror(int errnum);
]])

local C = ffi.C
local cast, ffi_string, errno, new = ffi.cast, ffi.string, ffi.errno, ffi.new
local byte, format, tonumber = string.byte, string.format, tonumber
local set_stream = dispatch.set_stream

-- As lua2pipe.py's (the line limit is the same, over-long lines are answered alike).
local MAX_LINE = 65536
local LATENCY_RING = 4096
local CLOCK_MONOTONIC = 1 -- the clock Python's time.monotonic reads on Linux
local NEWLINE = 10
local EINTR, EAGAIN, POLLOUT = 4, 11, 4
-- Room left at the end of the buffer below which the unread bytes move to its start before a read.
local MIN_READ = 4096

local shared -- the lua2pipe_shared * of the current serve() call
local timespec = new("lua2pipe_timespec")
local pollfd = new("lua2pipe_pollfd")

local function now()
  C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.seconds) + tonumber(timespec.nanoseconds) * 1e-9
end

-- Writes `length` bytes of data (a string, or the address of memory) to pdns, looping on partial
-- writes; returns nil and errno on a failure (pdns gone: EPIPE). EAGAIN waits for room (a
-- non-blocking pipe), EINTR tries again.
local function write_all(data, length)
  local fd, bytes, done = shared.output_fd, cast("const char *", data), 0
  while done < length do
    local written = tonumber(C.write(fd, bytes + done, length - done))
    if written >= 0 then
      done = done + written
    else
      local code = errno()
      if code == EAGAIN then
        pollfd.fd, pollfd.events = fd, POLLOUT
        C.poll(pollfd, 1, -1)
      elseif code ~= EINTR then
        return nil, code
      end
    end
  end
  return true
end

-- dispatch.lua's writer of an AXFR answer's parts, as Coprocess.stream_rows: the rows are written
-- from the answer buffer in place (its address and length), under the lock, so a runaway answer
-- from the watchdog comes between parts; each part restarts the clock.
local function stream(rows, length)
  local lock = shared.lock
  C.pthread_mutex_lock(lock)
  local ok, code = write_all(rows, length)
  shared.busy_since = now()
  C.pthread_mutex_unlock(lock)
  if not ok then
    error(format("cannot write to pdns: %s", ffi_string(C.strerror(code))), 0)
  end
end

-- Whether buffer[start .. start + length - 1] is ASCII: Python checks that other lines are UTF-8.
-- A compiled loop over the bytes; string.find with a class ("[\128-\255]") took 28% of the
-- loop's time (make profile's constant-answer row).
local function is_ascii(buffer, start, length)
  for i = start, start + length - 1 do
    if buffer[i] >= 128 then
      return false
    end
  end
  return true
end

-- Reads more input after the unread bytes; false at EOF, nil and errno on a failure.
local function read_more()
  local start, stop, capacity = shared.start, shared.stop, shared.capacity
  local buffer = shared.buffer
  if capacity - stop < MIN_READ and start > 0 then
    C.memmove(buffer, buffer + start, stop - start)
    stop = stop - start
    shared.start, shared.stop = 0, stop
  end
  local count = tonumber(C.read(shared.input_fd, buffer + stop, capacity - stop))
  if count > 0 then
    shared.stop = stop + count
    return true
  end
  if count == 0 then
    return false
  end
  return nil, errno()
end

-- Skips the rest of an over-long line: what follows its newline stays unread. EINTR is retried
-- here: the bytes skipped so far are gone, so Python could not resume the skip.
local function skip_line()
  shared.start, shared.stop = 0, 0
  while true do
    local more, code = read_more()
    if more then
      local buffer = shared.buffer
      local newline = C.memchr(buffer, NEWLINE, shared.stop)
      if newline ~= nil then
        shared.start = cast("unsigned char *", newline) - buffer + 1
        return true
      end
      shared.start, shared.stop = 0, 0
    elseif more == false or code ~= EINTR then
      return more, code
    end
  end
end

-- The next line, as LineReader.readline takes it: "line" (its place in shared.line_start and
-- shared.line_length; the last one at EOF may lack its newline), "too long" (over MAX_LINE
-- bytes, skipped), "eof", or "error" and errno (EINTR included: Python runs its signal handlers).
local function take_line()
  while true do
    local buffer, start, stop = shared.buffer, shared.start, shared.stop
    local newline = C.memchr(buffer + start, NEWLINE, stop - start)
    if newline ~= nil then
      local length = cast("unsigned char *", newline) - buffer - start
      shared.start = start + length + 1
      if length > MAX_LINE then
        return "too long"
      end
      shared.line_start, shared.line_length = start, length
      return "line"
    end
    if stop - start > MAX_LINE then
      local ok, code = skip_line()
      if ok == nil then
        return "error", code
      end
      return "too long"
    end
    local more, code = read_more()
    if more == nil then
      return "error", code
    elseif not more then
      if shared.stop == shared.start then
        return "eof"
      end
      start = shared.start
      shared.line_start, shared.line_length, shared.start = start, shared.stop - start, shared.stop
      return "line"
    end
  end
end

-- serve(address, answer, too_long_answer): serves lines until one needs Python, and returns why:
--   "eof"                                  stdin reached EOF
--   "line", line                           a line for Python to answer whole (Coprocess.answer):
--                                          `answer` handed it back (false: not Q or AXFR, not a
--                                          lookup), it is not ASCII, or chores are waiting
--   "failed", line, why, context, restart  the dispatcher failed the question (Python counts
--                                          it; its clock still runs): `answer`'s results
--   "error", errno                         read(2) or write(2) failed
-- `address` is the lua2pipe_shared struct's, `answer` the protocol's answer function (the pipe's
-- dispatch.answer, remote mode's remote.answer, or their answer_capped), and `too_long_answer`
-- the protocol's answer to a line over MAX_LINE bytes.
local function serve(address, answer, too_long_answer)
  shared = cast("lua2pipe_shared *", address)
  set_stream(stream)
  local lock, latencies = shared.lock, shared.latencies
  while true do
    local taken, code = take_line()
    if taken == "line" then
      local buffer, line_start, line_length = shared.buffer, shared.line_start, shared.line_length
      local line = ffi_string(buffer + line_start, line_length)
      if shared.chores ~= 0 or not is_ascii(buffer, line_start, line_length) then
        return "line", line
      end
      local started = now()
      shared.busy_since = started
      local text, why, context, restart = answer(line)
      if text == false then
        shared.busy_since = 0
        return "line", line
      end
      if text == nil then
        return "failed", line, why, context, restart
      end
      shared.questions = shared.questions + 1
      if byte(line, 1) == 65 then -- "A": AXFR
        shared.lists = shared.lists + 1
      end
      C.pthread_mutex_lock(lock)
      shared.busy_since = 0
      local written, write_code = write_all(text, #text)
      C.pthread_mutex_unlock(lock)
      if not written then
        return "error", write_code
      end
      local count = shared.latency_count
      latencies[count % LATENCY_RING] = now() - started
      shared.latency_count = count + 1
    elseif taken == "too long" then
      shared.failures = shared.failures + 1
      local written, write_code = write_all(too_long_answer, #too_long_answer)
      if not written then
        return "error", write_code
      end
    else
      return taken, code
    end
  end
end

return serve
