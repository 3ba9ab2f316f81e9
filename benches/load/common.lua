-- Shared by get.lua and put.lua (loaded with dofile). The user naming scheme
-- matches bench_username() in benches/baseline/src/main.rs and the preload in
-- bench.py: "user" followed by the user's index in base 26 as five letters.
-- Requests are built by plain string concatenation from precomputed pieces:
-- the load generator shares a 2-core machine with the server, so every
-- microsecond it spends per request is one the measurement can't use.
local N = tonumber(os.getenv("BENCH_USERS") or "1000")

local pairs26 = {}
for i = 0, 675 do
  pairs26[i] = string.char(97 + math.floor(i / 26), 97 + i % 26)
end

function bench_username(i)
  local lo = i % 676
  i = (i - lo) / 676
  local mid = i % 676
  i = (i - mid) / 676
  return "user" .. string.char(97 + i % 26) .. pairs26[mid] .. pairs26[lo]
end

function random_user()
  return bench_username(math.random(0, N - 1))
end

function host_header()
  return "Host: " .. wrk.host .. ":" .. tostring(wrk.port) .. "\r\n"
end

local thread_counter = 0
function setup(thread)
  thread_counter = thread_counter + 1
  thread:set("thread_id", thread_counter)
end

function init(args)
  math.randomseed(os.time() * 1000 + (thread_id or 0))
  if init_requests then
    init_requests()
  end
end

-- One machine-readable line for bench.py; latencies in microseconds.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors_status":%d,"errors_connect":%d,"errors_read":%d,"errors_write":%d,"errors_timeout":%d,' ..
    '"lat_mean_us":%.1f,"lat_p50_us":%d,"lat_p90_us":%d,"lat_p99_us":%d,"lat_p999_us":%d,"lat_max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.status, e.connect, e.read, e.write, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
