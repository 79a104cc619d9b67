#!/usr/bin/env python3
"""Encode the google-cloudevents JSON fixtures as protobuf binary with Google's own library.

For every third_party/google-cloudevents/testdata/google/events/**/<DataType>[-<case>].json the
fixture's folder names the proto package (cloud/pubsub/v1 -> google.events.cloud.pubsub.v1) and
its file name the message. The message class comes from the `google-events` PyPI package
(module google.events.cloud.pubsub_v1, class MessagePublishedData); the JSON is parsed with the
proto3 JSON mapping (proto-plus `Message.from_json`, which is protobuf's json_format) and
serialized deterministically. The bytes land at <out>/google/events/.../<same name>.pb, plus a
manifest.json with the message name and sha256 of each.

Nothing is skipped silently: a missing module or class, a JSON document the library rejects, an
unknown field other than `@type`, or two spellings of one field with different values all make the
run fail (exit 2) with the reason printed and recorded in the manifest entry.

    python3 tools/events/protobuf_fixtures.py            # (re)write tests/fixtures/google-events-protobuf
    python3 tools/events/protobuf_fixtures.py --check    # regenerate in a temp dir, compare byte for byte
"""

import argparse
import filecmp
import hashlib
import importlib
import importlib.metadata
import json
import pathlib
import re
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[2]
HERE = pathlib.Path(__file__).resolve().parent
DEFAULT_TESTDATA = REPO / "third_party" / "google-cloudevents" / "testdata"
DEFAULT_OUT = REPO / "tests" / "fixtures" / "google-events-protobuf"
PINNED = ("google-events", "protobuf", "proto-plus", "googleapis-common-protos")
FIXTURE_NAME = re.compile(r"^([A-Z][A-Za-z0-9]*)(?:-([A-Za-z0-9_.]+))?\.json$")
# JSON keys the library may drop: the fixtures copy "@type" from Any-wrapped originals into plain
# messages (PubsubMessage, AuditLog), where the proto3 JSON mapping has no such field.
IGNORABLE_KEYS = {"@type"}
# Well-known types with a JSON form of their own: their contents are not walked as fields.
SPECIAL_JSON = {
    "google.protobuf." + n
    for n in ("Any", "Timestamp", "Duration", "FieldMask", "Struct", "Value", "ListValue",
              "DoubleValue", "FloatValue", "Int64Value", "UInt64Value", "Int32Value",
              "UInt32Value", "BoolValue", "StringValue", "BytesValue", "Empty")
}


class FixtureError(Exception):
    pass


def rel(path, base):
    try:
        return pathlib.Path(path).resolve().relative_to(base).as_posix()
    except ValueError:
        return pathlib.Path(path).as_posix()


def library_versions():
    out = {}
    for name in PINNED:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def warn_if_not_pinned(versions):
    req = HERE / "requirements.txt"
    if not req.exists():
        return
    for line in req.read_text().splitlines():
        m = re.match(r"^\s*([A-Za-z0-9_.-]+)==([^\s;#]+)", line)
        if m and m.group(1) in versions and versions[m.group(1)] != m.group(2):
            print(f"warning: {m.group(1)} {versions[m.group(1)]} is installed, "
                  f"requirements.txt pins {m.group(2)}: output may differ", file=sys.stderr)


def find_fixtures(testdata):
    root = testdata / "google" / "events"
    if not root.is_dir():
        raise SystemExit(f"error: no fixture tree at {root}")
    fixtures = sorted(root.rglob("*.json"), key=lambda p: p.relative_to(testdata).as_posix())
    if not fixtures:
        raise SystemExit(f"error: no JSON fixtures under {root}")
    return fixtures


def message_class(fixture, testdata):
    """(full proto name, proto-plus class) for a fixture path, or FixtureError."""
    relpath = fixture.relative_to(testdata)
    m = FIXTURE_NAME.match(relpath.name)
    if not m:
        raise FixtureError(f"file name is not <DataType>[-<case>].json: {relpath.name}")
    parts = relpath.parent.parts  # ("google", "events", "cloud", "pubsub", "v1")
    if len(parts) < 4 or parts[:2] != ("google", "events"):
        raise FixtureError(f"folder {relpath.parent.as_posix()} is not google/events/<product>/<version>")
    package = ".".join(parts)
    full_name = f"{package}.{m.group(1)}"
    # The library puts package a.b.c.v1 in module a.b.c_v1 (google.events.cloud.pubsub_v1).
    module_name = ".".join(parts[:-1]) + "_" + parts[-1]
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise FixtureError(f"google-events has no module {module_name} for package {package}: {e}")
    cls = getattr(module, m.group(1), None)
    if cls is None or not hasattr(cls, "pb"):
        raise FixtureError(f"module {module_name} has no message class {m.group(1)} ({full_name})")
    actual = cls.pb().DESCRIPTOR.full_name
    if actual != full_name:
        raise FixtureError(f"{module_name}.{m.group(1)} is {actual}, expected {full_name}")
    return full_name, cls


def reject_duplicate_keys(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise FixtureError(f"JSON object has key {k!r} twice")
        seen[k] = v
    return seen


def walk(descriptor, value, path, ignored, aliases):
    """Collect JSON keys the parser would drop, and fields spelled twice (jsonName and name)."""
    if descriptor.full_name in SPECIAL_JSON or not isinstance(value, dict):
        return
    by_key = {}
    for f in descriptor.fields:
        by_key[f.json_name] = f
        by_key[f.name] = f
    first = {}
    for key, v in value.items():
        here = f"{path}.{key}" if path else key
        field = by_key.get(key)
        if field is None:
            ignored.append(here)
            continue
        if field.name in first:
            other_key, other_v = first[field.name]
            if other_v != v:
                raise FixtureError(f"{here} and {other_key} name the same field "
                                   f"{descriptor.full_name}.{field.name} with different values")
            aliases.append(f"{here} = {other_key}")
            continue
        first[field.name] = (here, v)
        if v is None or field.message_type is None:
            continue
        sub = field.message_type
        if sub.GetOptions().map_entry:
            value_field = sub.fields_by_name["value"]
            if value_field.message_type is not None and isinstance(v, dict):
                for k, item in v.items():
                    walk(value_field.message_type, item, f"{here}[{k}]", ignored, aliases)
        elif isinstance(v, list):
            for i, item in enumerate(v):
                walk(sub, item, f"{here}[{i}]", ignored, aliases)
        else:
            walk(sub, v, here, ignored, aliases)


def encode(fixture, testdata, allow_unknown):
    """(entry fields, pb bytes) for one fixture; FixtureError on any problem."""
    full_name, cls = message_class(fixture, testdata)
    raw = fixture.read_bytes()
    text = raw.decode("utf-8")
    try:
        doc = json.loads(text, object_pairs_hook=reject_duplicate_keys)
    except json.JSONDecodeError as e:
        raise FixtureError(f"not valid JSON: {e}")
    if not isinstance(doc, dict):
        raise FixtureError("top-level JSON value is not an object")
    ignored, aliases = [], []
    walk(cls.pb().DESCRIPTOR, doc, "", ignored, aliases)
    unexpected = [k for k in ignored if k.rsplit(".", 1)[-1] not in IGNORABLE_KEYS]
    if unexpected and not allow_unknown:
        raise FixtureError(f"{full_name} has no field for {', '.join(unexpected)} "
                           "(the library would drop them; --allow-unknown to accept)")
    try:
        message = cls.from_json(text, ignore_unknown_fields=True)
    except Exception as e:  # json_format.ParseError and friends
        raise FixtureError(f"google-events rejects the JSON as {full_name}: "
                           f"{type(e).__name__}: {e}")
    data = cls.pb(message).SerializeToString(deterministic=True)
    entry = {
        "message": full_name,
        "json_sha256": hashlib.sha256(raw).hexdigest(),
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    if ignored:
        entry["ignored_json_keys"] = ignored
    if aliases:
        entry["duplicate_spellings"] = aliases
    return entry, data


def generate(testdata, out, allow_unknown):
    """Write the .pb files and manifest.json under out; returns the number of failures."""
    versions = library_versions()
    if versions["google-events"] is None:
        raise SystemExit("error: the google-events package is not installed in this Python; "
                         "pip install -r tools/events/requirements.txt (see tools/events/README.md)")
    warn_if_not_pinned(versions)
    entries, failures = [], 0
    for fixture in find_fixtures(testdata):
        relpath = fixture.relative_to(testdata)
        pb_rel = relpath.with_suffix(".pb").as_posix()
        entry = {"json": rel(fixture, REPO), "pb": pb_rel}
        try:
            fields, data = encode(fixture, testdata, allow_unknown)
        except FixtureError as e:
            failures += 1
            print(f"error: {relpath.as_posix()}: {e}", file=sys.stderr)
            entry.update({
                "pb": None,
                "message": ".".join(relpath.parent.parts) + "." + re.split(r"[-.]", relpath.name)[0],
                "sha256": None,
                "reason": str(e),
            })
        else:
            entry.update(fields)
            target = out / pb_rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        entries.append(entry)
    manifest = {
        "description": "protobuf binary encodings of the google-cloudevents JSON fixtures, "
                       "made by Google's google-events Python library (proto3 JSON mapping, "
                       "unknown '@type' keys ignored, deterministic serialization)",
        "generator": "tools/events/protobuf_fixtures.py",
        "testdata": rel(testdata, REPO),
        "pb_paths_relative_to": "this manifest's folder",
        "libraries": versions,
        "fixtures": entries,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return failures, len(entries)


def tree(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT,
                    help=f"output folder (default: {rel(DEFAULT_OUT, REPO)})")
    ap.add_argument("--testdata", type=pathlib.Path, default=DEFAULT_TESTDATA,
                    help=f"fixture tree (default: {rel(DEFAULT_TESTDATA, REPO)})")
    ap.add_argument("--check", action="store_true",
                    help="regenerate into a temp folder and compare with --out byte for byte")
    ap.add_argument("--allow-unknown", action="store_true",
                    help="accept JSON keys other than @type that the message has no field for")
    args = ap.parse_args()
    testdata = args.testdata.resolve()
    out = args.out.resolve()

    if not args.check:
        failures, total = generate(testdata, out, args.allow_unknown)
        stale = [n for n in tree(out)
                 if n != "manifest.json" and n not in
                 {e["pb"] for e in json.loads((out / "manifest.json").read_text())["fixtures"]}]
        for n in stale:
            print(f"warning: {n} in {out} is not generated any more", file=sys.stderr)
        print(f"{total - failures} of {total} fixtures encoded into {out}")
        if failures:
            print(f"error: {failures} fixture(s) could not be encoded (see manifest.json reasons)",
                  file=sys.stderr)
            return 2
        return 0

    if not out.is_dir():
        print(f"error: {out} does not exist: run without --check first", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        fresh = pathlib.Path(tmp)
        failures, total = generate(testdata, fresh, args.allow_unknown)
        if failures:
            print(f"error: {failures} fixture(s) could not be encoded", file=sys.stderr)
            return 2
        committed, regenerated = set(tree(out)), set(tree(fresh))
        differing = sorted(
            [f"{n} (missing)" for n in regenerated - committed]
            + [f"{n} (not generated)" for n in committed - regenerated]
            + [n for n in committed & regenerated
               if not filecmp.cmp(out / n, fresh / n, shallow=False)])
    if differing:
        print(f"check failed: {len(differing)} file(s) in {out} differ from a fresh run:",
              file=sys.stderr)
        for n in differing:
            print(f"  {n}", file=sys.stderr)
        return 1
    print(f"check ok: {total} .pb files and manifest.json in {out} match a fresh run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
