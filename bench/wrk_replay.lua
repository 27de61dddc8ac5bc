-- wrk script for bench/kms_bench.py: replay pre-signed AWS KMS requests and count statuses.
--
-- Usage: wrk ... -s bench/wrk_replay.lua http://127.0.0.1:PORT/ -- REQUESTS_FILE
--
-- REQUESTS_FILE holds one record per request, written by kms_bench.py:
--   <method> <path>\n
--   <number of headers>\n
--   <Name>: <value>\n            (that many times; Host, Authorization, X-Amz-Date, ...)
--   <body length in bytes>\n
--   <body bytes>\n
-- Every thread loads all records (as raw HTTP/1.1 requests built once with wrk.format) and
-- cycles through them from its own starting offset. A response hook counts 2xx and other
-- statuses per thread; done() prints one line "WRK_JSON {...}" that kms_bench.py parses.

local threads = {}
local requests = {}
local position = 0

-- per-thread counters, read back in done() with thread:get()
ok2xx = 0
non2xx = 0
statuses = ""
first_error = ""
local status_counts = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("thread_index", #threads)
end

local function read_records(path)
   local file = assert(io.open(path, "rb"))
   local data = file:read("*a")
   file:close()
   local records = {}
   local at = 1
   local function line()
      local stop = assert(string.find(data, "\n", at, true), "truncated requests file")
      local text = string.sub(data, at, stop - 1)
      at = stop + 1
      return text
   end
   while at <= #data do
      local method, path = string.match(line(), "^(%S+) (%S+)$")
      local headers = {}
      for _ = 1, tonumber(line()) do
         local name, value = string.match(line(), "^([^:]+): (.*)$")
         headers[name] = value
      end
      local length = tonumber(line())
      local body = string.sub(data, at, at + length - 1)
      at = at + length + 1
      table.insert(records, wrk.format(method, path, headers, body))
   end
   return records
end

function init(args)
   requests = read_records(args[1])
   assert(#requests > 0, "no requests in " .. args[1])
   position = ((thread_index or 1) - 1) * math.floor(#requests / 4) % #requests
end

function request()
   position = position % #requests + 1
   return requests[position]
end

function response(status, headers, body)
   status_counts[status] = (status_counts[status] or 0) + 1
   if status >= 200 and status < 300 then
      ok2xx = ok2xx + 1
   else
      non2xx = non2xx + 1
      if first_error == "" then
         first_error = status .. " " .. string.sub(body or "", 1, 300)
      end
      local parts = {}
      for code, n in pairs(status_counts) do
         table.insert(parts, code .. "=" .. n)
      end
      statuses = table.concat(parts, ",")
   end
end

local function json_string(text)
   return '"' .. string.gsub(text, '[%c"\\]', function(c)
      return string.format("\\u%04x", string.byte(c))
   end) .. '"'
end

function done(summary, latency, _)
   local ok, bad, codes, first = 0, 0, {}, ""
   for _, thread in ipairs(threads) do
      ok = ok + thread:get("ok2xx")
      bad = bad + thread:get("non2xx")
      local s = thread:get("statuses")
      if s ~= "" then table.insert(codes, s) end
      if first == "" then first = thread:get("first_error") end
   end
   local e = summary.errors
   io.write(string.format(
      'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, '
         .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
         .. '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}, '
         .. '"ok2xx": %d, "non2xx": %d, "statuses": %s, "first_error": %s}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean,
      ok, bad, json_string(table.concat(codes, ";")), json_string(first)))
end
