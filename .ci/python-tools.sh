#!/usr/bin/env bash
# Installs the Python tools the catalog test uses, into a venv under target/, and prints the path
# of its interpreter: `openapi-spec-validator` (validates the OpenAPI document, independently of
# this crate) and `jsonschema` (checks each example body against its schema).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$PWD/target/python-tools"
if ! "$venv/bin/python" -c "import openapi_spec_validator, jsonschema" 2>/dev/null; then
    echo "python-tools: installing openapi-spec-validator and jsonschema into $venv" >&2
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet openapi-spec-validator jsonschema >&2
fi
echo "$venv/bin/python"
