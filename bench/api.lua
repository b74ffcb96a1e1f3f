-- wrk script: GET an API route, with a bearer token when one is given, and,
-- when done, print one machine-readable line with throughput, latency
-- percentiles and errors (the same BENCH_RESULT line as token.lua).
--
-- Environment:
--   BENCH_API_PATH   the path to GET (default /api/private)
--   BENCH_API_TOKEN  the access token, sent as "Authorization: Bearer <token>";
--                    unset or empty sends no Authorization header (unprotected route)

wrk.method = "GET"
wrk.path = os.getenv("BENCH_API_PATH") or "/api/private"
wrk.headers["Accept"] = "application/json"
local token = os.getenv("BENCH_API_TOKEN")
if token ~= nil and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

function done(summary, latency, requests)
  local e = summary.errors
  -- Latencies are in microseconds; duration is in microseconds too.
  io.write(string.format(
    "BENCH_RESULT requests=%d duration_us=%d rps=%.2f p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.1f "
      .. "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
