#!/usr/bin/env bash
# Property-based check of the server API against docs/openapi.yaml with schemathesis.
#
#   tests/schemathesis/run.sh BASE_URL API_KEY      e.g. run.sh http://127.0.0.1:8000 secret
#
# Every operation of the document (POST /api/<method>, POST /api, GET /health) gets
# generated requests — valid ones and, in the coverage phase, invalid ones — and each
# response must not be a 5xx and must match the documented status, content type and
# schema. Bounded: SCHEMATHESIS_MAX_EXAMPLES (default 30) cases per operation and a hard
# SCHEMATHESIS_TIMEOUT (default 300 s) for the whole run; a fixed seed and no example
# database keep runs repeatable. A run also fails when an operation refuses most of its
# valid requests with 400 (see schemathesis.toml). Needs schemathesis on PATH:
# `cargo test --test it schemathesis` installs it (tests/schemathesis/requirements.txt) into
# a virtual environment under target/ and runs this script with it.
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 BASE_URL API_KEY" >&2
    exit 2
fi
base_url=${1%/}
api_key=$2
max_examples=${SCHEMATHESIS_MAX_EXAMPLES:-30}
hard_timeout=${SCHEMATHESIS_TIMEOUT:-300}
seed=${SCHEMATHESIS_SEED:-20240601}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
spec="$here/../../docs/openapi.yaml"

if ! command -v schemathesis >/dev/null 2>&1; then
    echo "schemathesis is not installed; run: pip install -r $here/requirements.txt" >&2
    exit 127
fi

# Run from a scratch directory so no schemathesis.toml of the caller is picked up and
# reports / hypothesis data do not land in the repository.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

status=0
timeout --kill-after=10s "${hard_timeout}s" \
    schemathesis --config-file "$here/schemathesis.toml" run "$spec" \
        --url "$base_url" \
        -H "X-API-Key: $api_key" \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
        --phases examples,coverage,fuzzing \
        --max-examples "$max_examples" \
        --seed "$seed" \
        --workers 1 \
        --request-timeout 10 \
        --generation-database none \
        --suppress-health-check all \
        --no-color \
    || status=$?

if [[ $status -eq 124 || $status -eq 137 ]]; then
    echo "schemathesis did not finish within ${hard_timeout}s" >&2
fi
exit "$status"
