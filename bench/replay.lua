-- wrk script for bench/callback_throughput.py: replay a pool of pre-generated POSTs, each once.
--
-- Environment:
--   BENCH_POOL     file with one request per line: "<path?query>\t<body>"
--   BENCH_THREADS  number of wrk threads (-t); thread k sends lines k, k+T, k+2T, ...
--   BENCH_LIMIT    stop after this many requests in all (0: until the pool or -d runs out)
--
-- done() prints one JSON line: requests, duration, latency percentiles, non-200 count, empty
-- bodies and whether the pool ran out. Requests are formatted once, in init(), so request()
-- costs a table lookup.
--
-- Once a thread has sent its whole share, its free connections send a probe that answers 404
-- (ignored) until the last real answers arrive; then the thread stops and sends wrk a SIGINT:
-- wrk's main thread otherwise sleeps out the whole -d duration, and the summary's duration
-- would include the idle time. (With -t > 1 the first thread to finish ends the run.)

local ffi = require("ffi")
ffi.cdef("int getpid(void); int kill(int pid, int sig);")
local SIGINT = 2

local pool_file = os.getenv("BENCH_POOL")
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
local limit = tonumber(os.getenv("BENCH_LIMIT") or "0")
local threads = {}
local counter = 0

function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

function init(args)
   reqs = {}
   local quota = limit > 0 and math.ceil(limit / nthreads) or math.huge
   local headers = { ["Content-Type"] = "text/xml" }
   local i = 0
   for line in io.lines(pool_file) do
      if i % nthreads == id and #reqs < quota then
         local tab = line:find("\t", 1, true)
         reqs[#reqs + 1] = wrk.format("POST", line:sub(1, tab - 1), headers, line:sub(tab + 1))
      end
      i = i + 1
   end
   probe = wrk.format("GET", "/__bench_pool_done__") -- a 404 on every target
   sent, answered, non200, empty, exhausted, probing = 0, 0, 0, 0, 0, false
   verifying = id == 0 -- wrk calls thread 0's request() once before connecting, to check it
end

local function finish()
   if exhausted == 0 then
      exhausted = 1
      wrk.thread:stop()
      ffi.C.kill(ffi.C.getpid(), SIGINT)
   end
end

function request()
   if verifying then
      verifying = false
      return probe
   end
   sent = sent + 1
   if sent > #reqs then -- never send a message twice: probe (404) until the last answers arrive
      probing = true
      return probe
   end
   return reqs[sent]
end

function response(status, headers, body)
   if exhausted == 1 or (probing and status == 404) then
      return
   end
   answered = answered + 1
   if status ~= 200 then
      non200 = non200 + 1
   elseif body == nil or #body == 0 then
      empty = empty + 1
   end
   if answered >= #reqs then
      finish()
   end
end

function done(summary, latency, requests)
   local totals = { answered = 0, non200 = 0, empty = 0, exhausted = 0 }
   for _, thread in ipairs(threads) do
      for key, _ in pairs(totals) do
         totals[key] = totals[key] + (thread:get(key) or 0)
      end
   end
   local errors = summary.errors
   io.write(string.format(
      '{"requests": %d, "answered": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
         .. '"mean_us": %.1f, "non200": %d, "empty": %d, "exhausted": %d, "socket_errors": %d}\n',
      summary.requests, totals.answered, summary.duration, latency:percentile(50),
      latency:percentile(99), latency.mean, totals.non200, totals.empty, totals.exhausted,
      errors.connect + errors.read + errors.write + errors.timeout
   ))
end
