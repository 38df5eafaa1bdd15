#!/usr/bin/env python3
"""Repository policy for GitHub Actions workflows, on top of actionlint and zizmor.

Each rule is one that a supply-chain or blast-radius review would otherwise catch by eye:
  - every third-party action is pinned to a full 40-hex commit SHA, with its release in a
    trailing comment (`uses: owner/repo@<sha> # v1.2.3`), so Dependabot and reviewers can
    read what is pinned; local actions and reusable workflows (./...) are exempt;
  - one SHA per action across the repository (two pins of one action drift apart);
  - the workflow grants nothing at the top (`permissions: {}`) and every job declares the
    permissions it needs;
  - every job that runs steps has `timeout-minutes` (the default of 6 hours burns runners);
  - the workflow has a `concurrency` group;
  - no `pull_request_target` (it runs with secrets on code from forks).

Usage: check-workflows.py DIR   (prints one line per violation; exit 1 when any)
"""

import pathlib
import re
import sys

import yaml

USES_RE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>[^\s#]+)\s*(?:#\s*(?P<comment>.*))?$")
PINNED_RE = re.compile(r"^(?P<action>[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(?:/[^@]+)?)@(?P<sha>[0-9a-f]{40})$")
VERSION_COMMENT_RE = re.compile(r"^v?\d+(\.\d+){0,2}([-.][0-9A-Za-z.]+)?\b")


class Loader(yaml.SafeLoader):
    """YAML 1.1 reads the key `on` as the boolean True; workflows mean the string."""


Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def check_file(path: pathlib.Path, pins: dict) -> list:
    problems = []
    text = path.read_text(encoding="utf-8")
    for lineno, line in enumerate(text.splitlines(), 1):
        m = USES_RE.match(line)
        if not m:
            continue
        ref = m.group("ref").strip("'\"")
        if ref.startswith("./") or ref.startswith("docker://"):
            if ref.startswith("docker://") and "@sha256:" not in ref:
                problems.append(f"{path}:{lineno}: docker action {ref} is not pinned by digest")
            continue
        p = PINNED_RE.match(ref)
        if not p:
            problems.append(f"{path}:{lineno}: {ref} is not pinned to a full commit SHA")
            continue
        comment = (m.group("comment") or "").strip()
        if not VERSION_COMMENT_RE.match(comment):
            problems.append(f"{path}:{lineno}: {ref} lacks its release in a comment (# vX.Y.Z)")
        action = p.group("action").split("/")
        key = "/".join(action[:2])
        pins.setdefault(key, {}).setdefault(p.group("sha"), []).append(f"{path}:{lineno}")

    doc = yaml.load(text, Loader=Loader)  # noqa: S506 - Loader derives from SafeLoader
    if not isinstance(doc, dict):
        return problems + [f"{path}: not a YAML mapping"]
    triggers = doc.get("on", {})
    trigger_names = triggers if isinstance(triggers, (list, str)) else list(triggers or {})
    if "pull_request_target" in trigger_names:
        problems.append(f"{path}: pull_request_target is forbidden (secrets on fork code)")
    if doc.get("permissions", None) != {}:
        problems.append(f"{path}: top-level permissions must be {{}}; grant per job")
    reusable_only = trigger_names == ["workflow_call"] or trigger_names == "workflow_call"
    if "concurrency" not in doc and not reusable_only:
        problems.append(f"{path}: no concurrency group")
    for name, job in (doc.get("jobs") or {}).items():
        if not isinstance(job, dict):
            problems.append(f"{path}: job {name} is not a mapping")
            continue
        if "permissions" not in job:
            problems.append(f"{path}: job {name} does not declare its permissions")
        if "steps" in job and "timeout-minutes" not in job:
            problems.append(f"{path}: job {name} has no timeout-minutes")
    return problems


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    root = pathlib.Path(sys.argv[1])
    files = sorted(root.glob("*.yml")) + sorted(root.glob("*.yaml"))
    if not files:
        print(f"no workflows in {root}", file=sys.stderr)
        return 1
    pins: dict = {}
    problems = []
    for f in files:
        problems += check_file(f, pins)
    for action, shas in sorted(pins.items()):
        if len(shas) > 1:
            where = "; ".join(f"{sha[:12]} at {', '.join(locs)}" for sha, locs in shas.items())
            problems.append(f"{action} is pinned to {len(shas)} different SHAs: {where}")
    for p in problems:
        print(p)
    print(f"workflow policy: {len(files)} workflows, {sum(len(s) for a in pins.values() for s in a.values())} pinned uses, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
