#!/usr/bin/env bash
# A quick load on loopback: JSON login (Argon2id-bound) and GET /users/me (offline
# token validation), with wrk. Prints requests/s and latency percentiles.
#
#   scripts/quick-load.sh              # SQLite, fresh files in a temporary folder
#   scripts/quick-load.sh postgres     # fresh PostgreSQL databases at 127.0.0.1:5432
#
# Needs wrk, curl and jq (installed from Debian's packages if missing). SKIP_BUILD=1 reuses
# target/release/launcher as it is. Bounded: each
# scenario runs DURATION seconds (default 10) against 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${1:-sqlite}"
duration="${DURATION:-10}"

for tool in wrk curl jq; do
  command -v "$tool" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$tool" >/dev/null; }
done
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release -q -p launcher

work=$(mktemp -d)
trap 'kill "${server:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
export IDP_LISTEN=127.0.0.1:3900 IDP_ISSUER=http://127.0.0.1:3900 RS_ISSUER=http://127.0.0.1:3900
export RS_LISTEN=127.0.0.1:4900 IDP_AUDIENCE=http://127.0.0.1:4900 RS_AUDIENCE=http://127.0.0.1:4900
export IDP_KEYS_DIR="$work/keys" RUST_LOG=warn
if [ "$backend" = postgres ]; then
  pg=postgres://postgres@127.0.0.1:5432
  suffix=$(date +%s)
  psql "$pg/postgres" -qc "CREATE DATABASE load_idp_test_$suffix" -c "CREATE DATABASE load_rs_test_$suffix"
  export IDP_DATABASE_URL="$pg/load_idp_test_$suffix" RS_DATABASE_URL="$pg/load_rs_test_$suffix"
else
  export IDP_DATABASE_URL="sqlite://$work/idp.db" RS_DATABASE_URL="sqlite://$work/users.db"
fi
./target/release/launcher & server=$!
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:3900/health >/dev/null && curl -sf http://127.0.0.1:4900/health >/dev/null && break; sleep 0.1; done

creds='{"email":"load@example.com","password":"correct horse battery staple"}'
curl -sf -X POST -H 'Content-Type: application/json' -d "$creds" http://127.0.0.1:3900/auth/register >/dev/null
token=$(curl -sf -X POST -H 'Content-Type: application/json' -d "$creds" http://127.0.0.1:3900/auth/login | jq -r .access_token)

cat > "$work/login.lua" <<LUA
wrk.method = "POST"
wrk.body = '$creds'
wrk.headers["Content-Type"] = "application/json"
LUA

echo "== backend: $backend, $(nproc) cores, ${duration}s per scenario"
echo "== POST /auth/login (4 connections)"
wrk -t2 -c4 -d"${duration}s" --latency -s "$work/login.lua" http://127.0.0.1:3900/auth/login |
  grep -E 'Requests/sec|50%|99%|Non-2xx|Socket errors' || true
echo "== GET /users/me (32 connections)"
wrk -t2 -c32 -d"${duration}s" --latency -H "Authorization: Bearer $token" http://127.0.0.1:4900/users/me |
  grep -E 'Requests/sec|50%|99%|Non-2xx|Socket errors' || true
