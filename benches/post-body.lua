-- wrk script: POST / with a body of BODY_BYTES bytes (default 1 MiB).
-- Usage: BODY_BYTES=16777216 wrk -s benches/post-body.lua http://127.0.0.1:8080/
local size = tonumber(os.getenv("BODY_BYTES") or "1048576")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.body = string.rep("x", size)
