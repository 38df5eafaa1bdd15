#!/usr/bin/env python3
"""Rebuild the AWS provider's schema from the prebuilt cdktf bindings (npm @cdktf/provider-aws).

Why: the Terraform registry (and GitHub releases) cannot be reached from our machines and
CI, and the Go module proxy only serves terraform-provider-aws v1.60.0 (2019), so the real
provider binary cannot be had. The prebuilt cdktf bindings are generated from the real
provider's `terraform providers schema -json` and keep, in the TypeScript source embedded
in each module's source map, every attribute's name, type and computed/optional/required
flags, and whether a nested structure is a block. This script turns that back into the
`terraform providers schema -json` format, which schema-provider serves to Terraform so that
`terraform validate` and `terraform test` (mock providers) check our code against the real
6.x schema.

Usage: cdktf_schema.py PACKAGE_DIR OUT.json
"""
import base64
import json
import multiprocessing
import re
import sys
from pathlib import Path

FLAGS = re.compile(r"^\s*// (\w+) - computed: (true|false), optional: (true|false), required: (true|false)\s*$")
NEW_COMPLEX = re.compile(r'private _\w+ = new (\w+)\(this, "(\w+)"(?:, (true|false))?\);')
GETTER_KINDS = [
    (re.compile(r"cdktf\.Fn\.tolist\(this\.getNumberListAttribute\("), ["set", "number"]),
    (re.compile(r"cdktf\.Fn\.tolist\(this\.getListAttribute\("), ["set", "string"]),
    (re.compile(r"this\.getNumberListAttribute\("), ["list", "number"]),
    (re.compile(r"this\.getListAttribute\("), ["list", "string"]),
    (re.compile(r"this\.getStringMapAttribute\("), ["map", "string"]),
    (re.compile(r"this\.getNumberMapAttribute\("), ["map", "number"]),
    (re.compile(r"this\.getBooleanMapAttribute\("), ["map", "bool"]),
    (re.compile(r"this\.getAnyMapAttribute\("), ["map", "dynamic"]),
    (re.compile(r"this\.getStringAttribute\("), "string"),
    (re.compile(r"this\.getNumberAttribute\("), "number"),
    (re.compile(r"this\.getBooleanAttribute\("), "bool"),
    (re.compile(r"this\.interpolationForAttribute\("), "dynamic"),
]
STORAGE_KINDS = {
    "string": "string", "number": "number", "boolean": "bool",
    "stringList": "string", "numberList": "number", "booleanList": "bool",
    "stringMap": "string", "numberMap": "number", "booleanMap": "bool",
    "stringListList": ["list", "string"], "numberListList": ["list", "number"],
    "stringListMap": ["list", "string"], "anyMap": "dynamic",
}


def typescript_source(index_js: Path) -> str:
    js = index_js.read_text()
    m = re.search(r"sourceMappingURL=data:application/json;base64,(\S+)", js)
    if not m:
        raise ValueError(f"{index_js}: no embedded source map")
    return json.loads(base64.b64decode(m.group(1)))["sourcesContent"][0]


def lcfirst(s: str) -> str:
    return s[0].lower() + s[1:]


class Module:
    """One cdktf module (one resource or data source, with its nested structures)."""

    def __init__(self, ts: str):
        self.ts = ts
        self.lines = ts.splitlines()

    def body(self, start_pattern: str) -> list:
        m = re.search(start_pattern, self.ts, re.M)
        if not m:
            return []
        rest = self.ts[m.end():]
        end = re.search(r"^(export |\})", rest, re.M)
        return rest[: end.start() if end else len(rest)].splitlines()

    def class_body(self, name: str) -> list:
        return self.body(rf"^export class {name} extends [^{{]*\{{")

    def hcl_info(self, lines: list) -> dict:
        """name -> (isBlock, type, storageClassType, nested ToHcl function) from a ToHcl attrs map."""
        text = "\n".join(lines)
        info = {}
        for m in re.finditer(
            r"^\s*(\w+): \{\s*value: (.*?),\s*isBlock: (true|false),\s*type: \"(\w+)\",\s*storageClassType: \"(\w+)\",",
            text, re.M | re.S,
        ):
            fn = re.search(r"(\w+ToHclTerraform)", m.group(2))
            fn_name = fn.group(1) if fn and not fn.group(1).startswith(("string", "number", "boolean")) else None
            info[m.group(1)] = (m.group(3) == "true", m.group(4), m.group(5), fn_name)
        return info

    def struct_hcl(self, struct: str) -> dict:
        return self.hcl_info(self.body(rf"^export function {lcfirst(struct)}ToHclTerraform\("))

    def element_class(self, collection_class: str) -> str:
        for line in self.class_body(collection_class):
            m = re.search(r"public get\((?:index: number|key: string)\): (\w+)", line)
            if m:
                return m.group(1)
        raise ValueError(f"no element type for {collection_class}")

    def block_from_class(self, cls: str, hcl: dict, depth: int = 0) -> dict:
        """Schema block of a resource class or an OutputReference class, from its flag comments."""
        if depth > 12:
            raise ValueError(f"nesting too deep at {cls}")
        lines = self.class_body(cls)
        attributes, block_types = {}, {}
        for i, line in enumerate(lines):
            m = FLAGS.match(line)
            if not m:
                continue
            name, computed, optional, required = m.group(1), m.group(2) == "true", m.group(3) == "true", m.group(4) == "true"
            window = "\n".join(lines[i + 1 : i + 4])
            flags = {k: True for k, v in (("computed", computed), ("optional", optional), ("required", required)) if v}
            if not flags:
                flags = {"optional": True}
            nc = NEW_COMPLEX.search(lines[i + 1]) if i + 1 < len(lines) else None
            if nc:
                coll_cls, is_set = nc.group(1), nc.group(3) == "true"
                if coll_cls.endswith("OutputReference"):
                    elem, mode = coll_cls, "single"
                elif coll_cls.endswith("Map"):
                    elem, mode = self.element_class(coll_cls), "map"
                else:
                    elem, mode = self.element_class(coll_cls), "set" if is_set else "list"
                struct = elem[: -len("OutputReference")]
                sub_hcl = self.struct_hcl(struct)
                entry = hcl.get(name)
                nested = self.block_from_class(elem, sub_hcl, depth + 1)
                if entry and entry[0]:  # a block
                    bt = {"nesting_mode": {"single": "list", "list": "list", "set": "set"}.get(mode, "list"), "block": nested}
                    if entry[1] == "struct":
                        bt["nesting_mode"] = "single"
                    elif mode == "single":
                        bt["max_items"] = 1
                    if required and bt["nesting_mode"] != "single":
                        bt["min_items"] = 1
                    block_types[name] = bt
                else:
                    obj = ["object", object_type(nested)]
                    if entry and entry[1] == "struct":
                        typ = obj
                    elif mode == "map":
                        typ = ["map", obj]
                    else:
                        typ = ["set" if mode == "set" else "list", obj]
                    attributes[name] = dict(type=typ, **flags)
                continue
            typ = None
            entry = hcl.get(name)
            if entry and not entry[0] and entry[2] in STORAGE_KINDS:
                elem = STORAGE_KINDS[entry[2]]
                typ = elem if entry[1] == "simple" else [entry[1], elem]
            if typ is None:
                for rx, kind in GETTER_KINDS:
                    if rx.search(window):
                        typ = kind
                        break
            if typ is None:
                typ = "dynamic"
            attributes[name] = dict(type=typ, **flags)
        return {"attributes": attributes, "block_types": block_types}

    def block_from_hcl(self, hcl: dict, depth: int = 0) -> dict:
        """Schema block from ToHcl maps only (the provider block has no flag comments): all optional."""
        attributes, block_types = {}, {}
        for name, (is_block, kind, storage, fn) in hcl.items():
            if is_block and fn:
                sub = self.hcl_info(self.body(rf"^export function {fn}\("))
                block_types[name] = {"nesting_mode": "list", "block": self.block_from_hcl(sub, depth + 1)}
                continue
            elem = STORAGE_KINDS.get(storage, "dynamic")
            attributes[name] = {"type": elem if kind == "simple" else [kind, elem], "optional": True}
        return {"attributes": attributes, "block_types": block_types}


def object_type(block: dict) -> dict:
    out = {k: v["type"] for k, v in block["attributes"].items()}
    for k, bt in block["block_types"].items():
        inner = ["object", object_type(bt["block"])]
        out[k] = inner if bt["nesting_mode"] == "single" else [bt["nesting_mode"], inner]
    return out


def has_dynamic(typ) -> bool:
    return "dynamic" in json.dumps(typ)


def repair(block: dict) -> bool:
    """Fix what the bindings cannot say; returns whether the block still holds a dynamic type.

    - `tags_all` is a computed map(string) everywhere; the bindings of plugin-framework
      resources read it through an untyped getter.
    - A few deeply recursive blocks (wafv2 `statement`) are typed `any` in the bindings.
      Terraform forbids dynamic types inside set-nested blocks, so such a set becomes a
      list: order then matters in our check where the real provider ignores it, which
      only makes the check stricter.
    """
    dynamic = False
    for name, attr in block["attributes"].items():
        if name == "tags_all" and has_dynamic(attr["type"]):
            attr["type"] = ["map", "string"]
        dynamic = dynamic or has_dynamic(attr["type"])
    for bt in block["block_types"].values():
        if repair(bt["block"]):
            dynamic = True
            if bt["nesting_mode"] == "set":
                bt["nesting_mode"] = "list"
    return dynamic


def parse_module(index: Path):
    """(kind, terraform type, provider version, schema block) of one cdktf module, or None."""
    # Large modules keep their nested structures in index-structs/structsN.js.
    ts = "\n".join(typescript_source(p) for p in [index, *sorted(index.parent.glob("index-structs/structs*.js"))])
    mod = Module(ts)
    m = re.search(r"^export class (\w+) extends cdktf\.(TerraformResource|TerraformDataSource|TerraformProvider) \{", ts, re.M)
    if not m:
        return None
    cls, kind = m.group(1), m.group(2)
    tf_type = re.search(r'public static readonly tfResourceType = "(\w+)";', ts).group(1)
    version = re.search(r"providerVersion: '([\d.]+)'", ts).group(1)
    hcl = mod.hcl_info(mod.body(r"^\s*protected synthesizeHclAttributes\(\)[^{]*\{"))
    if kind == "TerraformProvider":
        return kind, tf_type, version, mod.block_from_hcl(hcl)
    block = mod.block_from_class(cls, hcl)
    if not block["attributes"]:
        raise ValueError(f"{index}: no attributes parsed")
    repair(block)
    return kind, tf_type, version, block


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help") else 2
    pkg, out = Path(sys.argv[1]), Path(sys.argv[2])
    version = None
    resources, data_sources, provider = {}, {}, None
    # 1,600 modules of regex work: spread over the cores.
    with multiprocessing.Pool() as pool:
        parsed = pool.map(parse_module, sorted((pkg / "lib").glob("*/index.js")), chunksize=16)
    for item in parsed:
        if item is None:
            continue
        kind, tf_type, mod_version, block = item
        version = version or mod_version
        if kind == "TerraformProvider":
            provider = block
            continue
        (resources if kind == "TerraformResource" else data_sources)[tf_type] = {"version": 0, "block": block}
    if provider is None or len(resources) < 1000:
        raise SystemExit(f"implausible result: provider={provider is not None} resources={len(resources)}")
    schema = {
        "format_version": "1.0",
        "provider_version": version,
        "provider_schemas": {
            "registry.terraform.io/hashicorp/aws": {
                "provider": {"version": 0, "block": provider},
                "resource_schemas": resources,
                "data_source_schemas": data_sources,
            }
        },
    }
    out.write_text(json.dumps(schema, sort_keys=True))
    print(f"aws provider {version}: {len(resources)} resources, {len(data_sources)} data sources -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
