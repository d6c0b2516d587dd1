-- wrk script: POST /api/v1/agents with a unique name per request, counting statuses.
-- Sends `Authorization: Bearer $MC_TOKEN` (an operator or admin API token; never printed).
local token = os.getenv("MC_TOKEN")
if token == nil or token == "" then
  io.stderr:write("register-agents.lua: set MC_TOKEN to an operator or admin API token\n")
  os.exit(1)
end
local request_headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}
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
  return wrk.format("POST", "/api/v1/agents", request_headers, body)
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
