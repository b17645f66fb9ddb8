-- wrk script of the load test (bench/loadtest.py runs it; docs/RELIABILITY.md, "Load").
--
--   wrk -tN -cN -dS --timeout 30s -s loadtest.lua URL -- TARGETS WEIGHTS KEYS THREADS SEED SAMPLES
--
-- TARGETS holds one request per line: KIND <tab> METHOD <tab> PATH [<tab> JSON BODY].
-- WEIGHTS is "kind=weight,..." (the mix), KEYS "kind=api key,..." (whose key
-- sends each kind). Every request picks a kind at random by weight, then the
-- next request of that kind: each thread cycles through its own share (every
-- Nth line) of each kind's lines, so no two threads send the same create.
-- A create sent twice would be a 409: a thread that runs out of creates
-- starts over and counts a wrap (the report says so).
--
-- Run with one connection per thread (-t = -c): request() and response() then
-- alternate, so each answer's latency and status are known per kind. The
-- monotonic clock is read through LuaJIT's ffi (clock_gettime, microseconds).
--
-- Each thread writes every answer to its own file SAMPLES.<thread index>, one
-- line each: kind <tab> status <tab> start <tab> latency (microseconds of
-- CLOCK_MONOTONIC, the clock of Python's time.monotonic); the first error
-- answers as "!error <tab> {json: kind, request, status, body}" lines, and a
-- wrap as "!wrap <tab> kind". The files are buffered and complete when wrk
-- exits (no table crosses threads: wrk's thread:get copies nested tables
-- badly). done() prints one line "LOADTEST_JSON {...}": wrk's own totals,
-- socket errors and latency percentiles.

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } loadtest_timespec;
int clock_gettime(int clock_id, loadtest_timespec *tp);
]])
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("loadtest_timespec")

local function now_us()
   ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
   return tonumber(timespec.tv_sec) * 1000000 + math.floor(tonumber(timespec.tv_nsec) / 1000)
end

local ERROR_BODIES_PER_THREAD = 10
local BODY_CHARACTERS = 600

local threads = {}

function setup(thread)
   thread:set("thread_index", #threads)
   table.insert(threads, thread)
end

local function pairs_of(text)
   local result = {}
   for name, value in string.gmatch(text, "([^=,]+)=([^,]*)") do
      result[name] = value
   end
   return result
end

local escapes = {['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t"}

local function json_string(text)
   local escaped = string.gsub(tostring(text), '[%c"\\]', function(character)
      return escapes[character] or string.format("\\u%04x", string.byte(character))
   end)
   return '"' .. escaped .. '"'
end

-- Per thread (each thread has its own Lua state).
local kinds = {}  -- kind name -> {requests = {{formatted request, "METHOD path"}, ...}, position = n}
local schedule = {}  -- {{kind, cumulative weight}, ...}
local total_weight = 0
local current, current_label, started = nil, nil, 0
local samples = nil
local error_bodies = 0

function init(args)
   local targets, weights, keys = args[1], pairs_of(args[2]), pairs_of(args[3])
   local thread_count, seed = tonumber(args[4]) or 1, tonumber(args[5]) or 1
   samples = assert(io.open(args[6] .. "." .. thread_index, "w"))
   math.randomseed(seed * 1000 + thread_index)
   local seen, spare = {}, {}
   for line in io.lines(targets) do
      local kind, method, path, body = line:match("^([%w_]+)\t(%u+)\t([^\t]+)\t?(.*)$")
      if kind == nil then
         error("bad target line: " .. line)
      end
      if kinds[kind] == nil then
         if keys[kind] == nil then
            error("no key for kind " .. kind)
         end
         kinds[kind] = {requests = {}, position = 0}
         spare[kind] = {}
      end
      local index = seen[kind] or 0
      seen[kind] = index + 1
      local headers = {
         ["Authorization"] = "Bearer " .. keys[kind],
         -- As the TLS-terminating proxy would say: DJANGO_DEBUG=0 redirects plain HTTP.
         ["X-Forwarded-Proto"] = "https",
      }
      if body ~= "" then
         headers["Content-Type"] = "application/json"
      else
         body = nil
      end
      local formatted = {wrk.format(method, path, headers, body), method .. " " .. path}
      if index % thread_count == thread_index then
         table.insert(kinds[kind].requests, formatted)
      elseif #spare[kind] < thread_count then
         table.insert(spare[kind], formatted)  -- for a kind with fewer lines than threads
      end
   end
   for kind, entry in pairs(kinds) do
      if #entry.requests == 0 then
         entry.requests = {spare[kind][thread_index % #spare[kind] + 1]}
      end
   end
   for kind, weight in pairs(weights) do
      weight = tonumber(weight)
      if kinds[kind] == nil then
         error("a weight for kind " .. kind .. " but no targets")
      end
      if weight > 0 then
         total_weight = total_weight + weight
         table.insert(schedule, {kind, total_weight})
      end
   end
   if total_weight == 0 then
      error("no kind has a weight")
   end
end

function request()
   local pick = math.random() * total_weight
   local kind = schedule[#schedule][1]
   for _, slot in ipairs(schedule) do
      if pick < slot[2] then
         kind = slot[1]
         break
      end
   end
   local entry = kinds[kind]
   entry.position = entry.position + 1
   if entry.position > #entry.requests then
      entry.position = 1
      samples:write("!wrap\t", kind, "\n")
   end
   local formatted = entry.requests[entry.position]
   current, current_label = kind, formatted[2]
   started = now_us()
   return formatted[1]
end

function response(status, headers, body)
   local latency = now_us() - started
   samples:write(current, "\t", status, "\t", started, "\t", latency, "\n")
   if status >= 400 and error_bodies < ERROR_BODIES_PER_THREAD then
      error_bodies = error_bodies + 1
      samples:write(string.format(
         '!error\t{"kind": %s, "request": %s, "status": %d, "body": %s}\n',
         json_string(current), json_string(current_label), status,
         json_string(string.sub(body or "", 1, BODY_CHARACTERS))))
   end
end

function done(summary, latency, requests)
   local errors = summary.errors
   io.write(string.format(
      'LOADTEST_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, ' ..
      '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, "status_errors": %d}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
      errors.connect, errors.read, errors.write, errors.timeout, errors.status))
end
