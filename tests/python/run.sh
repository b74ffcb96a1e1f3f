#!/usr/bin/env bash
# The Python interop tests, once per set of pinned packages in requirements/ (each in its own
# virtual environment, rebuilt when its file changes), against the prebuilt tessera binary.
set -euo pipefail
cd "$(dirname "$0")"
for requirements in requirements/*.txt; do
  name=$(basename "$requirements" .txt)
  venv=".venv/$name"
  if ! cmp -s "$requirements" "$venv/installed-from.txt"; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$requirements"
    cp "$requirements" "$venv/installed-from.txt"
  fi
  printf '\n--> %s\n' "$name"
  "$venv/bin/python" -m unittest --verbose
done
