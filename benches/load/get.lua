-- GET /hello/{random stored user}
dofile((os.getenv("BENCH_LUA_DIR") or "benches/load") .. "/common.lua")

local suffix

function init_requests()
  suffix = " HTTP/1.1\r\n" .. host_header() .. "\r\n"
end

request = function()
  return "GET /hello/" .. random_user() .. suffix
end
