#!/usr/bin/env python3
"""Policy checks of the container packaging that no generic linter knows about.

Usage: policy.py compose COMPOSE_JSON      checks `docker compose config --format json` output
       policy.py dockerfile DOCKERFILE     checks the Dockerfile's runtime stage
       policy.py dockerignore DOCKERIGNORE checks the build context exclusions

Each prints one line per check ("ok ..." or "FAIL ...") and exits 1 if any failed. The
rules are the contracts the rest of the platform relies on: one image for every role,
non-root uid 10001, port 8080, readiness-gated start order, KRaft Kafka (see DESIGN.md
and docs/local-servers.md).
"""

import json
import re
import sys

QT_UID = "10001:10001"
ROLES = ("ingestion", "risk", "matching", "market-data")


class Checker:
    def __init__(self) -> None:
        self.failed = 0

    def check(self, ok: bool, what: str) -> None:
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            self.failed += 1


def command_of(svc: dict) -> list:
    cmd = svc.get("command") or []
    return cmd if isinstance(cmd, list) else cmd.split()


def check_compose(path: str, c: Checker) -> None:
    with open(path, encoding="utf-8") as f:
        cfg = json.load(f)
    services = cfg.get("services", {})

    qt = {n: s for n, s in services.items() if "quanttrader" in s.get("image", "")}
    roles = {}
    for name, svc in qt.items():
        cmd = command_of(svc)
        if cmd[:1] == ["serve"] and len(cmd) == 2:
            roles.setdefault(cmd[1], []).append(name)
    c.check(len(roles.get("ingestion", [])) >= 2, "at least two ingestion replicas")
    for role in ROLES[1:]:
        c.check(len(roles.get(role, [])) == 1, f"exactly one {role} service")
    images = {s.get("image") for s in qt.values()}
    c.check(len(images) == 1, f"one image for every role ({sorted(images)})")

    for name, svc in sorted(qt.items()):
        c.check(svc.get("user") == QT_UID, f"{name}: runs as {QT_UID}")
        c.check(svc.get("read_only") is True, f"{name}: read-only root file system")
        c.check("ALL" in (svc.get("cap_drop") or []), f"{name}: drops all capabilities")
        c.check(
            any("no-new-privileges" in o for o in svc.get("security_opt") or []),
            f"{name}: no-new-privileges",
        )
        c.check(not svc.get("privileged"), f"{name}: not privileged")
        env = svc.get("environment") or {}
        for key in ("QT_KAFKA__BROKERS", "QT_DATABASE__URL", "QT_REDIS__URL"):
            c.check(bool(env.get(key)), f"{name}: {key} set")
        # Passed through from the caller's environment (null when rendered without it),
        # never a literal: a token in the file would be a leaked secret.
        c.check(
            "QT_ADMIN_TOKEN" in env and env["QT_ADMIN_TOKEN"] is None,
            f"{name}: QT_ADMIN_TOKEN passed through, not written into the file",
        )
        deps = svc.get("depends_on") or {}
        if command_of(svc) == ["migrate"]:
            c.check(
                deps.get("postgres", {}).get("condition") == "service_healthy",
                f"{name}: waits for a healthy postgres",
            )
            continue
        test = (svc.get("healthcheck") or {}).get("test") or []
        c.check(
            any("/ready" in str(t) for t in test),
            f"{name}: health check probes /ready",
        )
        for dep in ("kafka", "postgres", "redis"):
            c.check(
                deps.get(dep, {}).get("condition") == "service_healthy",
                f"{name}: starts after {dep} is healthy",
            )
        c.check(
            deps.get("migrate", {}).get("condition") == "service_completed_successfully",
            f"{name}: starts after the migrations ran",
        )

    kafka = services.get("kafka", {})
    kenv = kafka.get("environment") or {}
    c.check(kafka.get("image", "").startswith("apache/kafka:"), "kafka: apache/kafka image")
    c.check(kenv.get("KAFKA_PROCESS_ROLES") == "broker,controller", "kafka: KRaft combined mode")
    c.check(
        not any("ZOOKEEPER" in k for k in kenv), "kafka: no ZooKeeper settings"
    )
    cluster_id = kenv.get("CLUSTER_ID", "")
    c.check(
        re.fullmatch(r"[A-Za-z0-9_-]{22}", cluster_id) is not None,
        "kafka: CLUSTER_ID is a 22-char base64url UUID",
    )
    c.check(services.get("postgres", {}).get("image", "").startswith("postgres:16"), "postgres:16")
    c.check(services.get("redis", {}).get("image", "").startswith("redis:7"), "redis:7")
    for name in ("kafka", "postgres", "redis", "web"):
        c.check(bool((services.get(name, {}).get("healthcheck") or {}).get("test")),
                f"{name}: has a health check")
    for name, svc in sorted(services.items()):
        image = svc.get("image", "")
        c.check(
            ":" in image and not image.endswith(":latest"),
            f"{name}: image has an explicit tag ({image})",
        )


def dockerfile_instructions(path: str) -> list:
    """(instruction, arguments) pairs, with line continuations joined, comments dropped."""
    out, buf = [], ""
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not buf and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if buf and line.lstrip().startswith("#"):
                continue
            if line.endswith("\\"):
                buf += line[:-1] + " "
                continue
            buf += line
            word, _, rest = buf.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            buf = ""
    return out


def check_dockerfile(path: str, c: Checker) -> None:
    ins = dockerfile_instructions(path)
    froms = [i for i, (w, _) in enumerate(ins) if w == "FROM"]
    c.check(len(froms) >= 3, f"multi-stage build ({len(froms)} stages)")
    final = ins[froms[-1]:]
    final_from = ins[froms[-1]][1]
    c.check(
        "distroless" in final_from or "-slim" in final_from,
        f"minimal runtime base ({final_from})",
    )
    users = [a for w, a in final if w == "USER"]
    c.check(users[-1:] == [QT_UID], f"runtime stage runs as {QT_UID}")
    c.check(("EXPOSE", "8080") in final, "EXPOSE 8080")
    entry = [a for w, a in final if w == "ENTRYPOINT"]
    c.check(
        bool(entry) and entry[-1].startswith("[") and "quanttrader" in entry[-1],
        "ENTRYPOINT quanttrader, exec form",
    )
    hc = [a for w, a in final if w == "HEALTHCHECK"]
    c.check(bool(hc) and "CMD [" in hc[-1], "HEALTHCHECK in exec form (no shell needed)")
    c.check(not any(w == "RUN" for w, _ in final), "no RUN in the runtime stage (no shell there)")
    c.check(
        any(w == "COPY" and "--from=web" in a and "dist" in a for w, a in final),
        "runtime gets the web screen from the node stage",
    )
    runs = [a for w, a in ins if w == "RUN"]
    c.check(any("--mount=type=cache" in a for a in runs), "BuildKit cache mounts")
    c.check(any("cargo chef cook" in a for a in runs), "dependencies cooked in their own layer")
    for i in froms:
        image = ins[i][1].split()[0]
        pinned = "$" in image or (":" in image and not image.endswith(":latest"))
        stage_ref = image in {ins[j][1].split()[-1] for j in froms if " AS " in ins[j][1].upper()}
        c.check(pinned or stage_ref, f"FROM {image}: pinned tag or earlier stage")


def check_dockerignore(path: str, c: Checker) -> None:
    with open(path, encoding="utf-8") as f:
        lines = {ln.strip() for ln in f if ln.strip() and not ln.startswith("#")}
    for pattern in ("**/target", "**/node_modules", ".git", "**/*.tfstate", "**/.env"):
        c.check(pattern in lines, f".dockerignore excludes {pattern}")


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[1] not in ("compose", "dockerfile", "dockerignore"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    c = Checker()
    {"compose": check_compose, "dockerfile": check_dockerfile,
     "dockerignore": check_dockerignore}[sys.argv[1]](sys.argv[2], c)
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
