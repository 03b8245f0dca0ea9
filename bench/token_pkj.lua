-- wrk script for bench/pkj.py: token.lua's client_credentials request authenticated with
-- private_key_jwt (RFC 7523): each request carries the next client assertion of a file made
-- beforehand (an assertion's jti is single use and wrk's Lua cannot sign). No Authorization.
-- Inputs (environment): BENCH_BODY and BENCH_ASSERTIONS (a file, one assertion a line).
-- Output: token.lua's "BENCH_RESULT {json}" line.

dofile(os.getenv("BENCH_LUA_DIR") .. "/token.lua")
wrk.headers["Authorization"] = nil

local assertions = {}
local next_assertion = 1
local base = os.getenv("BENCH_BODY")
  .. "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
  .. "&client_assertion="

local plain_init = init
function init(args)
  plain_init(args)
  for line in io.lines(os.getenv("BENCH_ASSERTIONS")) do
    table.insert(assertions, line)
  end
end

function request()
  local assertion = assertions[next_assertion]
  next_assertion = next_assertion + 1
  if next_assertion > #assertions then
    next_assertion = 1 -- replays from here on: they are refused and show as non-200 answers
  end
  return wrk.format(nil, nil, nil, base .. assertion)
end
