#!/usr/bin/env bash
# A portal asking firma for a signature with curl, jq, nc (netcat-openbsd)
# and openssl: create a transaction over the REST API (/api/v1), send the
# citizen to the approval page, receive firmad's signed callback and check
# its HMAC as the OpenAPI document (/openapi.json, "Callbacks") describes,
# then collect the signed documents and have firmad verify each one
# (POST /v1/verify).
#
#   FIRMA=http://127.0.0.1:7780 API_KEY_FILE=portal.key CALLBACK_KEY_FILE=callback.key \
#   CALLBACK_PORT=7791 SUBJECT=10000001S DOC=doc.txt OUT=results examples/portal-curl/portal.sh
#
# The portal must have been registered with the callback URL
# http://127.0.0.1:$CALLBACK_PORT/callback and with firmad's sandbox page
# ($FIRMA/sandbox/return?result=ok and ?result=error) among its redirect URLs.
set -euo pipefail

FIRMA=${FIRMA:-http://127.0.0.1:7780}
API_KEY_FILE=${API_KEY_FILE:-portal.key}
CALLBACK_KEY_FILE=${CALLBACK_KEY_FILE:-callback.key}
CALLBACK_PORT=${CALLBACK_PORT:-7791}
SUBJECT=${SUBJECT:-10000001S}
DOC=${DOC:-doc.txt}
OUT=${OUT:-results}
WAIT=${WAIT:-600} # seconds to wait for the citizen

api_key=$(tr -d ' \n' < "$API_KEY_FILE")
callback_key=$(tr -d ' \n' < "$CALLBACK_KEY_FILE") # hex: the HMAC key is the bytes it encodes
tmp=$(mktemp -d)
trap 'kill ${reply_pid:-} ${nc_pid:-} 2>/dev/null || true; rm -rf "$tmp"' EXIT

# Listen for the callback before creating the transaction: it may come as
# soon as the citizen approves. One connection, answered 204 once the
# notice (a JSON body) has arrived: an answer sent before it would let
# the sender hang up without sending it.
mkfifo "$tmp/reply"
{
	until tail -n1 "$tmp/callback.http" 2>/dev/null | grep -q '}[[:space:]]*$'; do sleep 0.1; done
	printf 'HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n'
} > "$tmp/reply" &
reply_pid=$!
timeout "$WAIT" nc -l 127.0.0.1 "$CALLBACK_PORT" < "$tmp/reply" > "$tmp/callback.http" &
nc_pid=$!

# 1. Create the transaction; the document goes as standard base64.
jq -n --arg subject "$SUBJECT" --arg name "$(basename "$DOC")" --rawfile doc <(base64 -w0 "$DOC") \
	--arg ok "$FIRMA/sandbox/return?result=ok" --arg ko "$FIRMA/sandbox/return?result=error" \
	'{subject_id: $subject, ok_url: $ok, error_url: $ko,
	  documents: [{name: $name, media_type: "text/plain", content: $doc}]}' > "$tmp/create.json"
curl -sS --fail-with-body -H "X-API-Key: $api_key" -H 'Content-Type: application/json' \
	--data-binary @"$tmp/create.json" "$FIRMA/api/v1/transactions" > "$tmp/created.json"
id=$(jq -r .transaction_id "$tmp/created.json")

# 2. Send the citizen to the approval page.
echo "transaction $id"
echo "send the citizen to $(jq -r .redirect_url "$tmp/created.json")"

# 3. Wait for the signed notice and check it: Firma-Signature is "v1=" and
# the hex HMAC-SHA256 of "<Firma-Timestamp>.<body>".
wait "$nc_pid" || { echo "portal.sh: no callback within $WAIT s" >&2; exit 1; }
nc_pid=
header() { grep -i "^$1:" "$tmp/callback.http" | head -n1 | cut -d: -f2- | tr -d ' \r'; }
ts=$(header Firma-Timestamp)
sig=$(header Firma-Signature)
sed '1,/^\r$/d' "$tmp/callback.http" > "$tmp/notice.json" # the body: what follows the blank line
want=$({ printf '%s.' "$ts"; cat "$tmp/notice.json"; } |
	openssl dgst -sha256 -mac HMAC -macopt "hexkey:$callback_key" -r | cut -d' ' -f1)
# (A shell compares in variable time; a portal in a language with a
# constant-time comparison uses it, as examples/portal-go does.)
if [ "$sig" != "v1=$want" ]; then
	echo "portal.sh: callback refused: Firma-Signature does not match" >&2
	exit 1
fi
age=$(( $(date +%s) - ts ))
if [ "${age#-}" -gt 300 ]; then
	echo "portal.sh: callback refused: Firma-Timestamp is ${age}s away" >&2
	exit 1
fi
state=$(jq -r .state "$tmp/notice.json")
echo "callback: transaction $(jq -r .id "$tmp/notice.json") $state (signature verified)"
[ "$(jq -r .id "$tmp/notice.json")" = "$id" ] || { echo "portal.sh: a notice for another transaction" >&2; exit 1; }
[ "$state" = done ] || { echo "portal.sh: transaction ended $state" >&2; exit 1; }

# 4. Collect the results and have each signature verified.
curl -sS --fail-with-body -H "X-API-Key: $api_key" "$FIRMA/api/v1/transactions/$id/result" > "$tmp/result.json"
mkdir -p "$OUT"
n=$(jq '.documents | length' "$tmp/result.json")
for ((i = 0; i < n; i++)); do
	name=$(jq -r ".documents[$i].name" "$tmp/result.json")
	format=$(jq -r ".documents[$i].format" "$tmp/result.json")
	[ "$(jq -r ".documents[$i].status" "$tmp/result.json")" = signed ] || { echo "portal.sh: $name not signed" >&2; exit 1; }
	jq -n --rawfile sig <(jq -j ".documents[$i].signature" "$tmp/result.json") --rawfile doc <(base64 -w0 "$DOC") \
		'{signature: $sig, content: $doc}' > "$tmp/verify.json"
	verdict=$(curl -sS --fail-with-body -H 'Content-Type: application/json' --data-binary @"$tmp/verify.json" \
		"$FIRMA/v1/verify" | jq -r .verdict)
	[ "$verdict" = VERDICT_VALID ] || { echo "portal.sh: $name: $verdict" >&2; exit 1; }
	jq -j ".documents[$i].signature" "$tmp/result.json" | base64 -d > "$OUT/$i-$name.$format.sig"
	echo "document $i $name: $format signature, $verdict, saved in $OUT/$i-$name.$format.sig"
done
