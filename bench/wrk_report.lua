-- wrk script of the benchmark suite (bench/load.py runs it).
--
--   wrk -t1 -cN -dS --timeout 60s -s wrk_report.lua URL -- TARGETS API_KEY MAX_REQUESTS
--
-- TARGETS holds one request per line: METHOD <tab> PATH [<tab> JSON BODY].
-- Each thread takes every Nth line (N = threads) and cycles through its
-- share, so writes never send the same body twice from two threads. Requests
-- are formatted once, in init(), so the script costs nothing per request.
-- MAX_REQUESTS > 0 stops each thread after that many responses (the smoke
-- test's tiny runs); 0 runs for the whole duration.
-- done() prints one line "BENCH_JSON {...}" with latency percentiles in
-- microseconds and the error counts (status errors are answers >= 400).

local threads = {}

function setup(thread)
   thread:set("thread_index", #threads)
   table.insert(threads, thread)
end

local requests = {}
local position = 0
local responses = 0
local max_requests = 0

function init(args)
   local targets, api_key = args[1], args[2]
   max_requests = tonumber(args[3]) or 0
   local thread_count = tonumber(args[4]) or 1
   wrk.headers["Authorization"] = "Bearer " .. api_key
   -- As a TLS-terminating proxy would say: DJANGO_DEBUG=0 redirects plain HTTP.
   wrk.headers["X-Forwarded-Proto"] = "https"
   local index = 0
   for line in io.lines(targets) do
      if index % thread_count == thread_index then
         local method, path, body = line:match("^(%u+)\t([^\t]+)\t?(.*)$")
         if body == "" then
            wrk.headers["Content-Type"] = nil
            body = nil
         else
            wrk.headers["Content-Type"] = "application/json"
         end
         table.insert(requests, wrk.format(method, path, nil, body))
      end
      index = index + 1
   end
   if #requests == 0 then
      error("no requests for thread " .. thread_index .. " in " .. targets)
   end
   if max_requests > 0 then
      -- Defined only when needed: a response() callback makes wrk parse every answer.
      response = function(status, headers, body)
         responses = responses + 1
         if responses >= max_requests then
            wrk.thread:stop()
         end
      end
   end
end

function request()
   position = position % #requests + 1
   return requests[position]
end

function done(summary, latency, requests)
   local errors = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
      '"max_us": %d, "mean_us": %.1f, "connect_errors": %d, "read_errors": %d, "write_errors": %d, ' ..
      '"status_errors": %d, "timeouts": %d}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max, latency.mean, errors.connect, errors.read, errors.write,
      errors.status, errors.timeout))
end
