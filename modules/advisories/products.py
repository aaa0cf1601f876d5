"""A CSAF product tree flattened to one entry per product id, with vendor keys and part numbers."""
from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Iterator

from otpatch.modules.advisories.families import software_name
from otpatch.modules.advisories.model import Product
from otpatch.modules.advisories.ranges import parse_affected
from otpatch.modules.advisories.vendors import decimal_minor, vendor_keys

MAX_BRANCH_DEPTH = 30  # vendor > family > name > version is four; real trees stay under ten
VERSION_BRANCHES = ("product_version", "product_version_range")
# A part number written in a name: capitals and digits, at least 10 long (BMXNOR0200H), or
# any such token with a wildcard (BMEP*, BMEP58*S, 171CBU*). In a "(part numbers ...)"
# list a hyphen stands for a wildcard too ("BMEP58-S" means BMEP58*S).
_PART = re.compile(r"(?<![\w*-])([A-Z0-9]{2,}[A-Z0-9*-]*)(?![\w*-])")
_PARENS = re.compile(r"\(([^)]*)\)")
_PART_LIST = re.compile(r"part\s*numbers?|model\s*numbers?|\*", re.I)
# Schneider's part numbers as some advisories space them ("BMX NOC 0401", "BMX P34x"), and
# an x for any digit ("140NOC78x00", "140CPU65xxxxx", "BMX P34x"): read as BMXNOC0401,
# 140NOC78*00, 140CPU65*, BMXP34*.
_SPACED = re.compile(r"\b(BM[EX]) ([A-Z]{1,3}) ?(\d{2,4}(?:[A-Z]|x+)?)(?![\w*-])")
_X_DIGITS = re.compile(r"(?<=[0-9A-Z])x+(?=[0-9A-Z]|(?![\w*-]))")


def flatten(document: dict) -> tuple[dict[str, Product], list[str]]:
    """Every product of the tree by id, and notes on entries that could not be used."""
    tree = document.get("product_tree") or {}
    products: dict[str, Product] = {}
    for product in _from_branches(tree.get("branches") or [], "$.product_tree.branches", {}):
        products.setdefault(product.product_id, product)
    for i, full in enumerate(tree.get("full_product_names") or []):
        path = f"$.product_tree.full_product_names[{i}]"
        products.setdefault(full["product_id"], _product(full, {}, path))
    notes = _relationships(tree.get("relationships") or [], products)
    return products, notes


class TreeTooDeep(ValueError):
    """Product-tree branches nested past MAX_BRANCH_DEPTH; `path` is the first too deep."""

    def __init__(self, path: str):
        super().__init__(f"product-tree branches nested deeper than {MAX_BRANCH_DEPTH} levels")
        self.path = path


def _from_branches(branches: list, path: str, context: dict, depth: int = 1
                   ) -> Iterator[Product]:
    if branches and depth > MAX_BRANCH_DEPTH:
        raise TreeTooDeep(path)
    for i, branch in enumerate(branches):
        here = f"{path}[{i}]"
        ctx = dict(context)
        ctx[branch["category"]] = branch["name"]
        if "product" in branch:
            yield _product(branch["product"], ctx, f"{here}.product")
        yield from _from_branches(branch.get("branches") or [], f"{here}.branches", ctx,
                                  depth + 1)


def _product(full: dict, ctx: dict, path: str) -> Product:
    vendor = ctx.get("vendor", "")
    keys = vendor_keys(vendor)
    category = next((c for c in VERSION_BRANCHES if c in ctx), "")
    name = ctx.get("product_name") or ctx.get("product_family") or full["name"]
    affected = parse_affected(ctx.get(category, ""), category or "product_version",
                              any(decimal_minor(k) for k in keys))
    helper = full.get("product_identification_helper") or {}
    parts = part_patterns(name, full["name"],
                          list(helper.get("model_numbers") or ()) + list(helper.get("skus") or ()))
    software = _software(helper.get("cpe", ""), name, ctx.get("product_family", ""),
                         full["name"])
    # A part number in a software product's name is the device it is for, not its own.
    return Product(product_id=full["product_id"], vendor=vendor, vendor_keys=keys, name=name,
                   full_name=full["name"], affected=affected, version_category=category,
                   part_patterns=() if software else parts, path=path, software=software)


def _software(cpe: str, *names: str) -> str:
    """What marks a product as software: its CPE's part (a = application; h hardware and
    o operating system or firmware are devices), else a word of its names."""
    part = str(cpe).split(":")[2:3] if str(cpe).startswith("cpe:2.3:") else []
    if part:
        return "CPE part a" if part == ["a"] else ""
    word = software_name(*names)
    return f"the word {word!r}" if word else ""


def part_patterns(name: str, full_name: str, model_numbers: Any = ()) -> tuple[str, ...]:
    """The part and model numbers a product names, upper case, `*` a wildcard; a part
    written in its three groups ("BMX NOC 0401") is read as one (BMXNOC0401)."""
    found = [str(m).strip().upper() for m in model_numbers if str(m).strip()]
    for text in (_written(name), _written(full_name)):
        for inside in _PARENS.findall(text):
            tokens = _tokens(inside.split("excluding")[0])
            if _PART_LIST.search(inside):
                found += [t.replace("-", "*") for t in tokens]
            elif tokens and " ".join(tokens) == inside.strip():
                found += tokens  # "(BMKC80)", "(6ES7155-5AA00-0AC0)": nothing but numbers
        outside = _PARENS.sub(" ", text)
        found += [t for t in _tokens(outside) if "-" not in t and (len(t) >= 10 or "*" in t)]
    return tuple(dict.fromkeys(found))


def _written(text: str) -> str:
    """A name with its spaced part numbers joined and x-for-digit runs made wildcards."""
    return _X_DIGITS.sub("*", _SPACED.sub(r"\1\2\3", text))


def _tokens(text: str) -> list[str]:
    return [t for t in _PART.findall(text) if re.search(r"[A-Z]", t)
            and (re.search(r"\d", t) and len(t) >= 5 or re.search(r"[A-Z0-9]{3}\*", t))]


def _relationships(relationships: list, products: dict[str, Product]) -> list[str]:
    """A relationship's product is the one it refers to, placed with the other (firmware
    installed on a device): it gets the referred product's versions and both names."""
    notes = []
    for i, rel in enumerate(relationships):
        full = rel["full_product_name"]
        ref = products.get(rel["product_reference"])
        other = products.get(rel["relates_to_product_reference"])
        path = f"$.product_tree.relationships[{i}]"
        if ref is None or other is None:
            notes.append(f"{path}: relationship {full['product_id']} refers to an undefined "
                         "product id; ignored")
            continue
        products.setdefault(full["product_id"], replace(
            ref, product_id=full["product_id"], full_name=full["name"], path=path,
            part_patterns=tuple(dict.fromkeys(ref.part_patterns + other.part_patterns)),
            related_names=(other.name,)))
    return notes
