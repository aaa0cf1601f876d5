"""Every schema otpatch ships is itself a valid JSON Schema 2020-12 document."""
from __future__ import annotations

import json
from importlib import resources

import pytest
from jsonschema import Draft202012Validator

SCHEMAS = sorted(p.name for p in resources.files("otpatch.schemas").iterdir()
                 if p.name.endswith(".schema.json"))


def test_the_playbook_and_inventory_schemas_ship():
    assert {"playbook.schema.json", "inventory.schema.json"} <= set(SCHEMAS)


@pytest.mark.parametrize("name", SCHEMAS)
def test_schema_is_valid_against_the_2020_12_meta_schema(name):
    schema = json.loads(resources.files("otpatch.schemas").joinpath(name).read_text("utf-8"))
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
