#!/usr/bin/env python3
"""Writes the `make invoke` fixtures of tests/fixtures/events for every event family of
google-cloudevents' test data: one binary-mode CloudEvent per family with the family's
fixture as its JSON data, the Firestore event again as protobuf (the bytes Google's Python
library made, tests/fixtures/google-events-protobuf), and a raw Pub/Sub push request.

Run from the repository root: python3 tools/events/invoke_fixtures.py [--check]
The event type of each is the first of the catalog whose data is the fixture's message.
"""

import base64
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "events"
MANIFEST = ROOT / "tests" / "fixtures" / "google-events-protobuf" / "manifest.json"
TYPES = ROOT / "events" / "src" / "generated" / "cloud_event_types.rs"

# family -> the fixture file (of the manifest) it sends
FAMILIES = {
    "audit": "LogEntryData-pubsubCreateTopic.json",
    "cloudbuild": "BuildEventData-simple.json",
    "scheduler": "SchedulerJobData-simple.json",
    "firebase-analytics": "AnalyticsLogData-complex.json",
    "firebase-auth": "AuthEventData-complex.json",
    "firebase-database": "ReferenceEventData-simple.json",
    "firebase-alerts": "AlertData-simple.json",
    "firebase-remoteconfig": "RemoteConfigEventData-simple.json",
    "firebase-testlab": "TestMatrixEventData-simple.json",
}


def first_type(message: str) -> str:
    text = TYPES.read_text()
    found = re.search(r"/// `([^`]+)`: data `" + re.escape(message) + "`", text)
    if not found:
        raise SystemExit(f"no CloudEvent type carries {message}")
    return found.group(1)


def source(ty: str) -> str:
    """A source like the producer's: google.cloud.<product>... or google.firebase.<product>..."""
    parts = ty.split(".")
    service = {"audit": "cloudaudit"}.get(parts[2], parts[2])
    if parts[1] == "firebase":
        service = "firebase" + parts[2] if not parts[2].startswith("firebase") else parts[2]
    return f"//{service}.googleapis.com/projects/my-project"


def fixtures() -> dict[str, dict]:
    manifest = json.loads(MANIFEST.read_text())
    by_name = {Path(f["json"]).name: f for f in manifest["fixtures"]}
    out = {}
    for family, name in FAMILIES.items():
        entry = by_name[name]
        ty = first_type(entry["message"])
        out[f"{family}-binary"] = {
            "description": f"{family} CloudEvent ({ty}), binary mode, data from google-cloudevents' {name}",
            "headers": {
                "ce-specversion": "1.0",
                "ce-id": f"{family}-1",
                "ce-source": source(ty),
                "ce-type": ty,
                "ce-time": "2026-01-01T12:00:00.000Z",
                "Content-Type": "application/json",
            },
            "body": json.loads((ROOT / entry["json"]).read_text()),
        }
    firestore = by_name["DocumentEventData-complex.json"]
    pb = (MANIFEST.parent / firestore["pb"]).read_bytes()
    out["firestore-protobuf"] = {
        "description": "firestore CloudEvent, binary mode, protobuf data (what Firestore triggers send by default)",
        "headers": {
            "ce-specversion": "1.0",
            "ce-id": "firestore-protobuf-1",
            "ce-source": "//firestore.googleapis.com/projects/my-project/databases/(default)",
            "ce-type": first_type(firestore["message"]),
            "ce-time": "2026-01-01T12:00:00.000Z",
            "ce-subject": "documents/gcf-test/IH75dRdeYJKd4uuQiqch",
            "Content-Type": "application/protobuf",
        },
        "bodyBase64": base64.b64encode(pb).decode(),
    }
    out["pubsub-push"] = {
        "description": "a raw Pub/Sub push request, as a push subscription or the emulator sends it",
        "headers": {"Content-Type": "application/json"},
        "body": {
            "message": {
                "data": base64.b64encode(b"Hello from a push subscription").decode(),
                "attributes": {"origin": "push"},
                "messageId": "pubsub-push-1",
                "publishTime": "2026-01-01T12:00:00.000Z",
            },
            "subscription": "projects/my-project/subscriptions/my-subscription",
        },
    }
    return out


def main() -> int:
    check = "--check" in sys.argv[1:]
    stale = []
    for name, fixture in fixtures().items():
        path = OUT / f"{name}.json"
        text = json.dumps(fixture, indent=2) + "\n"
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path.relative_to(ROOT)))
        else:
            path.write_text(text)
    if stale:
        print("stale fixtures (python3 tools/events/invoke_fixtures.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
