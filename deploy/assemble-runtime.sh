#!/bin/sh
# Copies what the Mailwarden services need at run time into OUT (default /out), from a tree where
# `npm ci`, `tsc -b` and `npm prune --omit=dev` have run (deploy/Dockerfile's build stage):
#   package.json + package-lock.json, the production node_modules (workspace packages are symlinks
#   into libs/ and services/, so the layout is kept), and for every workspace package its
#   package.json, compiled dist/src (no tests, no .tsbuildinfo) and run-time assets (e.g.
#   services/config/public) — never src/, test/ or tsconfig files.
set -eu
out="${1:-/out}"
mkdir -p "$out/deploy"
cp package.json package-lock.json "$out/"
cp -a node_modules "$out/"
for d in libs/* services/*; do
  [ -f "$d/package.json" ] || continue
  mkdir -p "$out/$d"
  for e in "$d"/*; do
    case "${e##*/}" in
      src | test | dist | node_modules | tsconfig*.json) ;;
      *) cp -a "$e" "$out/$d/" ;;
    esac
  done
  if [ -d "$d/dist/src" ]; then
    mkdir -p "$out/$d/dist"
    cp -a "$d/dist/src" "$out/$d/dist/"
  fi
  if [ -d "$d/node_modules" ]; then cp -a "$d/node_modules" "$out/$d/"; fi
done
cp deploy/healthcheck.mjs "$out/deploy/"
find "$out" -name '*.tsbuildinfo' -delete
