#!/usr/bin/env bash
# Every results page agrees with its committed data: `scripts/check_results.sh [DIR]` (default
# docs/results). One line per page (OK / FAIL with the page, the number on it, the value recomputed
# and the data file / ARCHIVED); exit 1 when a page fails. See scripts/check_results.py.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
exec "$root/.venv/bin/python" "$root/scripts/check_results.py" "${1:-$root/docs/results}"
