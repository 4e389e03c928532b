#!/usr/bin/env python3
"""Checks that every locked dependency gradflow's users compile declares a `rust-version` no
newer than gradflow's own (Cargo.toml `rust-version`).

It follows normal and build dependencies from gradflow, for every platform, through the locked
versions (`cargo metadata --locked`); dev-dependencies (criterion, clap) are listed but do not
fail the check, since users never build them. A dependency that declares no `rust-version`
cannot be checked and is listed as such.

What this cannot catch, with one stable toolchain: a dependency whose declared `rust-version`
is wrong; code of ours that needs a newer compiler for a language feature, a changed lint, type
inference or a Cargo feature (clippy's `incompatible_msrv` covers only standard-library APIs);
and platform-specific code paths we never compile. Only building with the MSRV toolchain
itself would.
"""

import json
import subprocess
import sys


def version_tuple(text):
    return tuple(int(part) for part in text.split("."))


def main():
    metadata = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--locked"],
            check=True,
            stdout=subprocess.PIPE,
        ).stdout
    )
    packages = {p["id"]: p for p in metadata["packages"]}
    root_id = metadata["resolve"]["root"]
    ours = packages[root_id]["rust_version"]
    if not ours:
        sys.exit("Cargo.toml has no rust-version")
    nodes = {n["id"]: n for n in metadata["resolve"]["nodes"]}

    def closure(kinds):
        seen, stack = set(), [root_id]
        while stack:
            for dep in nodes[stack.pop()]["deps"]:
                if any(k["kind"] in kinds for k in dep["dep_kinds"]) and dep["pkg"] not in seen:
                    seen.add(dep["pkg"])
                    stack.append(dep["pkg"])
        return seen

    def first_level(kinds):
        return {
            d["pkg"] for d in nodes[root_id]["deps"] if any(k["kind"] in kinds for k in d["dep_kinds"])
        }

    users = closure({None, "build"})
    # Everything reachable from the dev-dependencies, minus what users build anyway.
    dev = set()
    for start in first_level({"dev"}):
        dev.add(start)
        stack = [start]
        while stack:
            for dep in nodes[stack.pop()]["deps"]:
                if dep["pkg"] not in dev:
                    dev.add(dep["pkg"])
                    stack.append(dep["pkg"])
    dev -= users

    def newer(ids):
        return sorted(
            f"{packages[i]['name']} {packages[i]['version']} needs Rust {packages[i]['rust_version']}"
            for i in ids
            if packages[i]["rust_version"]
            and version_tuple(packages[i]["rust_version"]) > version_tuple(ours)
        )

    undeclared = sorted(f"{packages[i]['name']} {packages[i]['version']}" for i in users if not packages[i]["rust_version"])
    failing, dev_newer = newer(users), newer(dev)
    print(f"MSRV {ours}: {len(users)} locked dependencies that users build, "
          f"{len(users) - len(undeclared)} of them declare a rust-version")
    if undeclared:
        print("  declaring none (not checked): " + ", ".join(undeclared))
    if dev_newer:
        print("  dev-dependencies newer than the MSRV (not a failure): " + "; ".join(dev_newer))
    if failing:
        print("  NEWER THAN THE MSRV:\n    " + "\n    ".join(failing))
        sys.exit(1)


if __name__ == "__main__":
    main()
