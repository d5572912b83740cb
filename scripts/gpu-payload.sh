#!/bin/sh
# `make gpu-payload`: gpu-payload/ (ignored by git), everything one call of the lent GPU machine needs beside
# the repository's own files, and the call itself (DEVELOPERS.md):
#   gpu-payload/kiln-<version>-linux-x86_64.tar.xz   the bundle, repacked with xz: its two programs share
#                                                    most of their bytes (Swift runtime, Foundation, ICU
#                                                    data, Kiln), which xz's 64 MiB window stores once and
#                                                    gzip's 32 KiB window cannot (about 23 MiB against 59)
#   gpu-payload/wheels/fla_core-<FLA_VERSION>-py3-none-any.whl
#                                                    fla's Triton kernels (pure Python; einops, its one
#                                                    requirement, and PyTorch and Triton are on the machine)
#   gpu-payload/run.json, run.txt                    the device call: command, carry and timeout
# The machine takes at most 64 MiB: the payload with the repository's tracked and untracked files must fit
# in PAYLOAD_MAX_MIB (default 60, leaving room for files that appear before the call).
set -eu
cd "$(dirname "$0")/.."
version=$(cat VERSION)
archive="dist/kiln-$version-linux-x86_64.tar.gz"
fla_version=${FLA_VERSION:-0.6.0}
max_mib=${PAYLOAD_MAX_MIB:-60}
if [ ! -f "$archive" ]; then
    echo "error: $archive is missing; run make bundle first (make gpu-payload does)" >&2
    exit 1
fi

staging=gpu-payload.staging
rm -rf "$staging"
trap 'rm -rf "$staging"' EXIT
mkdir -p "$staging/wheels"
xz_name="kiln-$version-linux-x86_64.tar.xz"
echo "repacking $archive with xz (a few minutes on 2 cores)"
gzip -dc "$archive" | xz -9 -T1 > "$staging/$xz_name"

if python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 -d "$staging/wheels" "fla-core==$fla_version"; then
    echo "fla-core $fla_version: $(ls "$staging/wheels")"
else
    echo "note: could not download fla-core==$fla_version (no network or no pip?); the GPU script will skip fla's kernels" >&2
fi

# What travels: tracked files as they are on disk, untracked files git does not ignore, and the payload.
tree_bytes=$({ git ls-files -z --cached; git ls-files -z --others --exclude-standard; } | xargs -0 -r stat -c %s 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
payload_bytes=$(du -sb "$staging" | cut -f 1)
total_mib=$(awk "BEGIN { printf \"%.1f\", ($tree_bytes + $payload_bytes) / 1048576 }")
if [ $((tree_bytes + payload_bytes)) -gt $((max_mib * 1024 * 1024)) ]; then
    echo "error: the tree and the payload come to $total_mib MiB, over PAYLOAD_MAX_MIB=$max_mib (the machine takes 64 MiB)" >&2
    exit 1
fi

command="tar -xJf gpu-payload/$xz_name -C /tmp || python3 -m tarfile -e gpu-payload/$xz_name /tmp; /tmp/kiln-$version/scripts/gpu-check.sh --wheels gpu-payload/wheels"
printf '{\n  "command": "%s",\n  "carry": ["gpu-payload"],\n  "timeout_s": 570\n}\n' "$command" > "$staging/run.json"
cat > "$staging/run.txt" <<EOF
The device call (the run tool), from the repository root, after make gpu-payload:
  command:   $command
  carry:     ["gpu-payload"]
  timeout_s: 570
It sends $total_mib MiB (the tree and gpu-payload/). scripts/gpu-check.sh keeps itself inside 480 s;
its results come back in \$OUT: gpu-check.tar.gz (every JSON and log), summary.txt, summary.json,
gpu-check.log and the exported tuning files. DEVELOPERS.md says how to read and record them.
EOF
rm -rf gpu-payload
mv "$staging" gpu-payload
trap - EXIT
cat gpu-payload/run.txt
