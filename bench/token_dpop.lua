-- wrk script for bench/dpop.py: token.lua's client_credentials request, each with the next
-- DPoP proof of a file made beforehand (a proof is single use and wrk's Lua cannot sign).
-- Inputs (environment): BENCH_BODY, BENCH_AUTH and BENCH_PROOFS (a file, one proof a line).
-- Output: token.lua's "BENCH_RESULT {json}" line.

dofile(os.getenv("BENCH_LUA_DIR") .. "/token.lua")

local proofs = {}
local next_proof = 1

local plain_init = init
function init(args)
  plain_init(args)
  for line in io.lines(os.getenv("BENCH_PROOFS")) do
    table.insert(proofs, line)
  end
end

function request()
  local proof = proofs[next_proof]
  next_proof = next_proof + 1
  if next_proof > #proofs then
    next_proof = 1 -- replays from here on: they are refused and show as non-200 answers
  end
  wrk.headers["DPoP"] = proof
  return wrk.format()
end
