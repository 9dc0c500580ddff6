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
   idle = wrk.format("GET", "/healthz")
   sent, answered, non200, empty, exhausted = 0, 0, 0, 0, 0
end

function request()
   sent = sent + 1
   if sent > #reqs then -- never send a message twice: stop, and fill the socket with a probe
      exhausted = 1
      wrk.thread:stop()
      return idle
   end
   return reqs[sent]
end

function response(status, headers, body)
   if exhausted == 1 then
      return
   end
   answered = answered + 1
   if status ~= 200 then
      non200 = non200 + 1
   elseif body == nil or #body == 0 then
      empty = empty + 1
   end
   if answered >= #reqs then
      exhausted = 1
      wrk.thread:stop()
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
