-- wrk script: POST / with a binary-mode CloudEvent carrying exactly 1 KiB of JSON data.
-- Usage: wrk -s benches/cloudevent.lua http://127.0.0.1:8080/
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["ce-specversion"] = "1.0"
wrk.headers["ce-id"] = "bench-0001"
wrk.headers["ce-source"] = "//functions-framework-rust/bench"
wrk.headers["ce-type"] = "dev.functions-framework-rust.bench.v1"
wrk.headers["ce-time"] = "2024-01-01T00:00:00Z"

local prefix = '{"message":"benchmark event","attributes":{"origin":"wrk","size":"1KiB"},"padding":"'
local suffix = '"}'
wrk.body = prefix .. string.rep("x", 1024 - #prefix - #suffix) .. suffix
