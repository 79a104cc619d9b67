-- wrk script: POST / with a binary-mode CloudEvent whose data is the content of the file
-- BODY_FILE (make bench writes flat JSON objects of 1 KiB, 64 KiB and 1 MiB, and a Firestore
-- event's protobuf bytes). CONTENT_TYPE (default application/json) and CE_TYPE name them.
-- Usage: BODY_FILE=/tmp/data.json wrk -s benches/event-file.lua http://127.0.0.1:8080/
local path = os.getenv("BODY_FILE")
if not path then error("event-file.lua: set BODY_FILE to the file holding the event data") end
local file = assert(io.open(path, "rb"))
wrk.body = file:read("*a")
file:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = os.getenv("CONTENT_TYPE") or "application/json"
wrk.headers["ce-specversion"] = "1.0"
wrk.headers["ce-id"] = "bench-0001"
wrk.headers["ce-source"] = os.getenv("CE_SOURCE") or "//functions-framework-rust/bench"
wrk.headers["ce-type"] = os.getenv("CE_TYPE") or "dev.functions-framework-rust.bench.v1"
wrk.headers["ce-time"] = "2024-01-01T00:00:00Z"
