"""``specsim methods``: the registered accelerator methods and their parameters."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "methods",
        help="list the accelerator methods (plug-ins) and their parameters",
        description="List every registered accelerator method (specsim/methods/): what it models, whether it "
        "decodes speculatively, the trace draft schemes and target formats it replays, and its "
        "parameters (set in a run config under decoding.params) with defaults and units.",
    )
    p.add_argument("--json", action="store_true", help="print the listing as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from specsim.methods.describe import describe

    methods = describe()
    if args.json:
        print(json.dumps(methods, indent=2))
        return 0
    for m in methods:
        drafts = f"; drafts: {', '.join(m['drafts'])}" if m["drafts"] else ""
        targets = f"; target formats: {', '.join(m['target_formats'])}*" if m["target_formats"] else ""
        print(f"{m['name']} ({m['kind']}{drafts}{targets})\n  {m['summary']}")
        for p in m["params"]:
            unit = f" {p['unit']}" if p["unit"] else ""
            value = f"(required,{unit or ' no unit'})" if p["required"] else f"= {p['default']}{unit}"
            print(f"  decoding.params.{p['name']} {value}: {p['doc']}")
    return 0
