-- wrk script: POST /api/v1/agents with a unique name per request, counting statuses.
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
  table.insert(threads, thread)
end

function init(args)
  created = 0
  refused = 0
end

request = function()
  counter = counter + 1
  local body = string.format('{"name":"bench-%d-%d-%d","capabilities":["scan"]}', tid, counter, math.random(1, 1000000000))
  return wrk.format("POST", "/api/v1/agents", {["Content-Type"] = "application/json"}, body)
end

response = function(status, headers, body)
  if status == 201 then created = created + 1 else refused = refused + 1 end
end

done = function(summary, latency, requests)
  local c, r = 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("created")
    r = r + t:get("refused")
  end
  io.write(string.format("created: %d, not created: %d\n", c, r))
end
