-- wrk script: GET an API route with a DPoP-bound token, each request with its own pre-signed
-- proof (bench/dpop_proofs.mjs), and when done print the BENCH_RESULT line of api.lua.
--
-- Environment:
--   BENCH_API_PATH     the path to GET (default /api/private)
--   BENCH_DPOP_PREFIX  PREFIX.token holds the access token, PREFIX.proofs one proof per line
--   BENCH_DPOP_THREADS wrk's -t (threads take every Nth proof, so none is used twice)
-- A warm-up and the measured run share one proofs file: the first run writes how many proofs
-- it consumed to PREFIX.used and the next starts after them. A request beyond the last proof
-- is sent without one, is refused, and fails the run (non-2xx), rather than replay a proof.

wrk.method = "GET"
wrk.path = os.getenv("BENCH_API_PATH") or "/api/private"
local prefix = os.getenv("BENCH_DPOP_PREFIX")
local stride = tonumber(os.getenv("BENCH_DPOP_THREADS") or "1")

local function read_all(path)
  local file = assert(io.open(path, "r"))
  local text = file:read("*a")
  file:close()
  return text
end

local function first_unused()
  local file = io.open(prefix .. ".used", "r")
  if file == nil then return 0 end
  local used = tonumber(file:read("*l")) or 0
  file:close()
  return used
end

local threads = {}
function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function init(args)
  local start = first_unused() + thread_index
  token = read_all(prefix .. ".token")
  proofs = {}
  local n = 0
  for line in io.lines(prefix .. ".proofs") do
    if n >= start and (n - start) % stride == 0 then
      proofs[#proofs + 1] = line
    end
    n = n + 1
  end
  next_proof = 1
  headers = { ["Accept"] = "application/json", ["Host"] = wrk.headers["Host"], ["Authorization"] = "DPoP " .. token }
end

function request()
  headers["DPoP"] = proofs[next_proof]
  next_proof = next_proof + 1
  return wrk.format(nil, nil, headers)
end

function done(summary, latency, requests)
  local consumed = 0
  for _, thread in ipairs(threads) do
    consumed = math.max(consumed, (thread:get("next_proof") or 1) - 1)
  end
  local file = assert(io.open(prefix .. ".used", "w"))
  file:write(string.format("%d\n", first_unused() + consumed * stride))
  file:close()
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT requests=%d duration_us=%d rps=%.2f p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.1f "
      .. "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
