-- wrk script: POST / with a binary-mode Pub/Sub CloudEvent whose data is exactly 1 KiB of
-- JSON (a MessagePublishedData with base64 message data).
-- Usage: wrk -s benches/pubsub.lua http://127.0.0.1:8080/
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["ce-specversion"] = "1.0"
wrk.headers["ce-id"] = "bench-0001"
wrk.headers["ce-source"] = "//pubsub.googleapis.com/projects/bench/topics/bench"
wrk.headers["ce-type"] = "google.cloud.pubsub.topic.v1.messagePublished"
wrk.headers["ce-time"] = "2024-01-01T00:00:00Z"

local prefix = '{"message":{"attributes":{"origin":"wrk"},"messageId":"bench-1","publishTime":"2024-01-01T00:00:00Z","data":"'
local suffix = '"},"subscription":"projects/bench/subscriptions/bench"}'
wrk.body = prefix .. string.rep("A", 1024 - #prefix - #suffix) .. suffix
