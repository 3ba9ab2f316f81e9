-- PUT /hello/{random stored user} with a random date of birth (overwrites:
-- the number of stored users stays N).
dofile((os.getenv("BENCH_LUA_DIR") or "benches/load") .. "/common.lua")

local head
local bodies = {}
local BODIES = 4096

function init_requests()
  for k = 1, BODIES do
    bodies[k] = string.format('{"dateOfBirth":"%04d-%02d-%02d"}',
      math.random(1950, 2005), math.random(1, 12), math.random(1, 28))
  end
  head = " HTTP/1.1\r\n" .. host_header() ..
    "Content-Type: application/json\r\nContent-Length: " .. #bodies[1] .. "\r\n\r\n"
end

request = function()
  return "PUT /hello/" .. random_user() .. head .. bodies[math.random(1, BODIES)]
end
