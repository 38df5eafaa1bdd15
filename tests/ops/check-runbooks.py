#!/usr/bin/env python3
"""Checks that the runbooks can be followed: every relative link and #anchor in
docs/runbooks resolves (GitHub's heading slugs), every docs/runbooks path that a script or
workflow names exists, and every call of an operations script in a runbook uses a command
and options that script accepts.

Usage: check-runbooks.py REPO_ROOT
Exit 0 and one summary line when clean; 1 with one line per problem otherwise.
"""
import pathlib
import re
import sys

SCRIPTS = ("deploy", "rollback", "destroy", "bootstrap-state")


def slug(heading: str) -> str:
    # GitHub: lower case, drop punctuation but keep word characters, spaces and hyphens,
    # then each space becomes a hyphen.
    text = re.sub(r"`", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(md: pathlib.Path) -> set:
    seen, out = {}, set()
    in_code = False
    for line in md.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        m = None if in_code else re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            s = slug(m.group(1))
            n = seen.get(s, 0)
            seen[s] = n + 1
            out.add(s if n == 0 else f"{s}-{n}")
    return out


def script_interface(path: pathlib.Path):
    """Commands (the `a | b) shift ;;` case arm) and options (`    --opt)` arms)."""
    text = path.read_text()
    commands = set()
    for m in re.finditer(r"^  ([a-z][a-z |]*)\) shift ;;$", text, re.M):
        commands.update(c.strip() for c in m.group(1).split("|"))
    options = set(re.findall(r"^    (--[a-z-]+)\)", text, re.M))
    options.update({"--help", "--dry-run"})
    return commands, options


def main() -> int:
    root = pathlib.Path(sys.argv[1]).resolve()
    book = root / "docs" / "runbooks"
    problems = []
    mds = sorted(book.glob("*.md"))
    if not mds:
        print(f"no runbooks under {book}")
        return 1
    cache = {}
    links = 0
    for md in mds:
        in_code = False
        for no, line in enumerate(md.read_text().splitlines(), 1):
            if line.startswith("```"):
                in_code = not in_code
            if in_code:
                continue
            for target in re.findall(r"\]\(([^)\s]+)\)", line):
                if re.match(r"^[a-z]+:", target):
                    continue
                links += 1
                path, _, frag = target.partition("#")
                dest = (md.parent / path).resolve() if path else md
                if not dest.exists():
                    problems.append(f"{md.relative_to(root)}:{no}: link to missing {path}")
                    continue
                if frag and dest.suffix == ".md":
                    if dest not in cache:
                        cache[dest] = anchors(dest)
                    if frag not in cache[dest]:
                        problems.append(f"{md.relative_to(root)}:{no}: no heading #{frag} in {dest.name}")

    # Paths into the runbooks named by the scripts and the workflows.
    named = 0
    sources = [root / "scripts" / s for s in SCRIPTS] + [root / "scripts/lib/ops.sh"]
    sources += sorted((root / ".github" / "workflows").glob("*.yml"))
    for src in sources:
        if not src.exists():
            continue
        for m in re.finditer(r"docs/runbooks/[\w.-]+", src.read_text()):
            named += 1
            if not (root / m.group(0)).exists():
                problems.append(f"{src.relative_to(root)}: names missing {m.group(0)}")

    # Calls of the operations scripts written in the runbooks.
    calls = 0
    interfaces = {s: script_interface(root / "scripts" / s) for s in SCRIPTS}
    call_re = re.compile(r"scripts/(" + "|".join(map(re.escape, SCRIPTS)) + r")((?: [^`|;#\n]*)?)")
    for md in mds:
        for no, line in enumerate(md.read_text().splitlines(), 1):
            for m in call_re.finditer(line):
                name, rest = m.group(1), m.group(2).strip()
                commands, options = interfaces[name]
                words = rest.split()
                # deploy and rollback take a command first; destroy and bootstrap-state none.
                if commands and words and re.match(r"^[a-z]+$", words[0]) and words[0] not in commands:
                    problems.append(f"{md.relative_to(root)}:{no}: scripts/{name} has no command {words[0]}")
                    continue
                for opt in re.findall(r"(?<![\w-])--[a-z][a-z-]*", rest):
                    if opt not in options:
                        problems.append(f"{md.relative_to(root)}:{no}: scripts/{name} does not accept {opt}")
                calls += 1

    for p in problems:
        print(p)
    print(f"runbooks: {len(mds)} files, {links} links, {named} references from scripts and workflows, "
          f"{calls} script calls, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
