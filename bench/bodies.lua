-- wrk script: POSTs the lines of the file in BENCH_BODIES in turn (round robin), to
-- BENCH_PATH (default /validate/check), counts LinOTP answers (value true / false / other),
-- and prints one line `BENCHJSON {...}` with the figures. Use one thread (-t1): the turn
-- is per thread. Without BENCH_BODIES it GETs BENCH_PATH (the hello-world baseline).
local bodies = {}
nbodies = 0
local i = 0
local file = os.getenv("BENCH_BODIES")
accepted = 0
rejected = 0
other = 0
sent = 0
local path = os.getenv("BENCH_PATH") or "/validate/check"
local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  if not file then return end
  for line in io.lines(file) do
    nbodies = nbodies + 1
    bodies[nbodies] = line
  end
end

-- without BENCH_BODIES: GET BENCH_PATH (the hello-world baseline), a 200 counts as accepted
function request()
  i = i + 1
  sent = i
  if not file then return wrk.format("GET", path) end
  return wrk.format("POST", path, headers, bodies[((i - 1) % nbodies) + 1])
end

function response(status, hdrs, body)
  if status ~= 200 then
    other = other + 1
  elseif not file or string.find(body, '"value": true', 1, true) then
    accepted = accepted + 1
  else
    rejected = rejected + 1
  end
end

function done(summary, latency, requests)
  local acc, rej, oth, snt, nb = 0, 0, 0, 0, 0
  for _, t in ipairs(threads) do
    acc = acc + t:get("accepted")
    rej = rej + t:get("rejected")
    oth = oth + t:get("other")
    snt = snt + t:get("sent")
    nb = t:get("nbodies")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"responses":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,"accepted":%d,"rejected":%d,"non200":%d,"errors":%d,"sent":%d,"bodies":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    acc, rej, oth, e.connect + e.read + e.write + e.timeout, snt, nb))
end
