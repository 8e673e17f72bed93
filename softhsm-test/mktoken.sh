#!/usr/bin/env bash
# mktoken.sh DIR [LABEL] [PIN] [SO_PIN]
# Makes a throwaway SoftHSM2 token store in DIR with its own softhsm2.conf and
# initialises one token in it. Prints the environment to use it:
#   eval "$(softhsm-test/mktoken.sh /tmp/tok)"
# Remove it with: rm -rf DIR
set -euo pipefail
dir=${1:?usage: mktoken.sh DIR [LABEL] [PIN] [SO_PIN]}
label=${2:-firma-test}
pin=${3:-1234}
sopin=${4:-5678}

if ! command -v softhsm2-util >/dev/null 2>&1; then
  echo "mktoken.sh: softhsm2-util not found (apt-get install -y softhsm2)" >&2
  exit 1
fi
module=""
for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so /usr/local/lib/softhsm/libsofthsm2.so; do
  [ -e "$m" ] && module=$m && break
done
[ -n "$module" ] || { echo "mktoken.sh: libsofthsm2.so not found" >&2; exit 1; }

mkdir -p "$dir/tokens"
dir=$(cd "$dir" && pwd)
cat >"$dir/softhsm2.conf" <<CONF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
export SOFTHSM2_CONF="$dir/softhsm2.conf"
if ! softhsm2-util --show-slots 2>/dev/null | grep -q "Label:.*\b$label\b"; then
  softhsm2-util --init-token --free --label "$label" --pin "$pin" --so-pin "$sopin" >/dev/null
fi
echo "export SOFTHSM2_CONF=$dir/softhsm2.conf"
echo "export FIRMA_HSM_MODULE=$module"
echo "export FIRMA_HSM_TOKEN_LABEL=$label"
