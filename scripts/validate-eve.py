#!/usr/bin/env python3
"""Validates EVE JSON files against Suricata's EVE schema.

    scripts/validate-eve.py --suricata-schema eve-schema.json [--extensions on|off] FILE...

With --extensions off (events written with `--eve-extensions off`) every
event must validate against Suricata's schema alone. With --extensions on
(the default), against Suricata's schema with Tollgate's `tollgate`
property (schema/tollgate-eve.json) added to it. Prints a JSON summary
(events by type, errors) on stdout; exits 1 when any event fails, 2 on a
bad file or argument.
"""
import argparse
import copy
import json
import os
import sys

try:
    import jsonschema
except ImportError:
    sys.exit("validate-eve: python3-jsonschema is missing (apt-get install python3-jsonschema)")

HERE = os.path.dirname(os.path.abspath(__file__))
OURS = os.path.join(HERE, "..", "schema", "tollgate-eve.json")


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"validate-eve: {path}: {e}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suricata-schema", required=True, help="Suricata's eve-schema.json")
    ap.add_argument("--extensions", choices=["on", "off"], default="on")
    ap.add_argument("--max-errors", type=int, default=20)
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()

    schema = load(args.suricata_schema)
    if args.extensions == "on":
        schema = copy.deepcopy(schema)
        schema["properties"]["tollgate"] = load(OURS)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator = cls(schema)

    by_type, errors, events = {}, [], 0
    for path in args.files:
        try:
            f = open(path, encoding="utf-8")
        except OSError as e:
            sys.exit(f"validate-eve: {path}: {e}")
        with f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    ev = json.loads(line)
                except ValueError as e:
                    errors.append(f"{path}:{n}: not JSON: {e}")
                    continue
                events += 1
                kind = ev.get("event_type", "?") if isinstance(ev, dict) else "?"
                by_type[kind] = by_type.get(kind, 0) + 1
                for err in validator.iter_errors(ev):
                    where = "/".join(str(p) for p in err.absolute_path) or "(top)"
                    errors.append(f"{path}:{n}: {kind}: {where}: {err.message[:300]}")
    print(json.dumps({
        "extensions": args.extensions,
        "events": events,
        "by_type": by_type,
        "errors": len(errors),
        "first_errors": errors[: args.max_errors],
    }, indent=1, sort_keys=True))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
