#!/usr/bin/env python3
"""Validate rendered Kubernetes manifests offline.

Contract:
  * Built-in kinds are validated by `kubernetes-validate` against the Kubernetes OpenAPI
    schemas of every version given with --k8s-version, in strict mode (unknown fields fail).
  * Kinds defined by a CRD vendored under --crds (Argo CD, Argo Rollouts, External Secrets,
    Prometheus Operator) are validated against that CRD's openAPIV3Schema. Objects that
    declare properties get additionalProperties=false unless the schema preserves unknown
    fields, so a misspelt field fails here instead of being pruned silently by the API server.
  * A kind that is neither built in nor vendored is an error: nothing passes unchecked.
Exit status 0 when every document of every file is valid, 1 otherwise.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import jsonschema
import kubernetes_validate
import yaml

CrdKey = Tuple[str, str]  # (apiVersion, kind)
# libyaml parses the vendored CRDs (megabytes of YAML) ten times faster than pure Python.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _structural(schema: Any) -> Any:
    """Turn a CRD structural schema into a JSON schema that also rejects unknown fields."""
    if isinstance(schema, list):
        return [_structural(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _structural(v) for k, v in schema.items()}
    if out.get("nullable") is True and "type" in out:
        out["type"] = [out["type"], "null"]
    if out.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def load_crds(crd_dir: Path) -> Dict[CrdKey, Dict[str, Any]]:
    schemas: Dict[CrdKey, Dict[str, Any]] = {}
    for path in sorted(crd_dir.rglob("*.yaml")):
        for doc in yaml.load_all(path.read_text(), Loader=_LOADER):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec["versions"]:
                if not version.get("served"):
                    continue
                schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
                props = schema.setdefault("properties", {})
                # CRDs leave metadata open; the API server still requires a name.
                props["metadata"] = {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "maxLength": 253},
                        "namespace": {"type": "string", "maxLength": 63},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                        "finalizers": {"type": "array", "items": {"type": "string"}},
                    },
                    "additionalProperties": False,
                }
                key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                schemas[key] = _structural(schema)
    return schemas


def documents(path: Path) -> Iterator[Tuple[int, Dict[str, Any]]]:
    for index, doc in enumerate(yaml.load_all(path.read_text(), Loader=_LOADER)):
        if doc is None:
            continue
        if doc.get("kind") == "List":
            for item in doc.get("items", []):
                yield index, item
        else:
            yield index, doc


def validate_file(path: Path, crds: Dict[CrdKey, Dict[str, Any]], versions: List[str]) -> Tuple[int, List[str]]:
    errors: List[str] = []
    count = 0
    for index, doc in documents(path):
        count += 1
        kind = doc.get("kind", "?")
        name = (doc.get("metadata") or {}).get("name", "?")
        where = f"{path}[{index}] {kind}/{name}"
        key = (doc.get("apiVersion", ""), kind)
        if key in crds:
            validator = jsonschema.Draft7Validator(crds[key])
            for err in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
                loc = ".".join(str(p) for p in err.absolute_path) or "<root>"
                errors.append(f"{where}: {loc}: {err.message}")
            continue
        for version in versions:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as err:
                loc = ".".join(str(p) for p in err.path) or "<root>"
                errors.append(f"{where}: k8s {version}: {loc}: {err.message}")
            except kubernetes_validate.SchemaNotFoundError:
                errors.append(
                    f"{where}: {key[0]} {kind} is neither a Kubernetes {version} kind nor a vendored CRD"
                )
    return count, errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crds", type=Path, required=True, help="directory of vendored CRD YAML files")
    parser.add_argument(
        "--k8s-version", action="append", required=True, help="Kubernetes version to validate against (repeatable)"
    )
    parser.add_argument("files", nargs="+", type=Path, help="manifest files (multi-document YAML)")
    args = parser.parse_args()

    crds = load_crds(args.crds)
    total = 0
    failures: List[str] = []
    for path in args.files:
        count, errors = validate_file(path, crds, args.k8s_version)
        total += count
        failures.extend(errors)
        print(f"{'FAIL' if errors else 'ok  '} {path}: {count} objects")
    for line in failures:
        print(line, file=sys.stderr)
    print(f"validated {total} objects in {len(args.files)} files: {len(failures)} errors")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
