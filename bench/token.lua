-- wrk script: POST a client_credentials token request and, when done, print
-- one machine-readable line with throughput, latency percentiles and errors.
--
-- Environment:
--   BENCH_TOKEN_BODY  the x-www-form-urlencoded request body (required)
--   BENCH_TOKEN_PATH  the token endpoint path (default /oauth/token)

local body = os.getenv("BENCH_TOKEN_BODY")
if body == nil or body == "" then
  error("BENCH_TOKEN_BODY is not set")
end

wrk.method = "POST"
wrk.path = os.getenv("BENCH_TOKEN_PATH") or "/oauth/token"
wrk.body = body
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Accept"] = "application/json"

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
