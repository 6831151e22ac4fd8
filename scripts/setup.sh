#!/usr/bin/env bash
# Creates .venv with Python 3.10 and the pinned dependencies (idempotent, fast when done).
set -euo pipefail
cd "$(dirname "$0")/.."

find_python310() {
  local candidates=()
  [ -n "${PYTHON:-}" ] && candidates+=("$PYTHON")
  candidates+=(python3.10)
  if command -v pyenv >/dev/null 2>&1; then
    for dir in "$(pyenv root)"/versions/3.10*; do candidates+=("$dir/bin/python3.10"); done
  fi
  [ -d "$HOME/.pyenv/versions" ] && for dir in "$HOME"/.pyenv/versions/3.10*; do candidates+=("$dir/bin/python3.10"); done
  candidates+=(python3)  # with .python-version = 3.10.13 under pyenv this is 3.10
  for py in "${candidates[@]}"; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; then
      echo "$py"; return 0
    fi
  done
  return 1
}

stamp_of() { cat requirements.txt requirements-dev.txt constraints.txt | sha256sum | cut -c1-16; }

if [ -x .venv/bin/python ] && [ -f .venv/.installed ] && [ "$(cat .venv/.installed)" = "$(stamp_of)" ]; then
  exit 0
fi
PY=$(find_python310) || {
  echo "ERROR: Python 3.10 is required (Rasa 3.6 does not support newer Pythons;" >&2
  echo "       pip on 3.11 silently installs the ancient Rasa 1.10)." >&2
  echo "Install it, e.g. 'pyenv install 3.10.13' or 'apt install python3.10 python3.10-venv'," >&2
  echo "or point PYTHON=/path/to/python3.10 at one, then run this again." >&2
  exit 1
}
echo "Using $PY ($("$PY" --version))"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade "pip<24.1" wheel
.venv/bin/python -m pip install -q -r requirements.txt -r requirements-dev.txt -c constraints.txt
stamp_of > .venv/.installed
echo "Environment ready in .venv"
