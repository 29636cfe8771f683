#!/usr/bin/env bash
# Re-creates vendor/rmqtt and vendor/rmqtt-net: the published crates with our patches applied.
#   vendor/patches/apply.sh [DIR]     into DIR (default: vendor/), e.g. to compare with `diff -r`
# For a new upstream release: change the versions below, run this, resolve what `patch`
# rejects (each change is marked `Patched:` in the code), then write the .patch files again
# from the result (vendor/README.md says how).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/..}"
for spec in rmqtt:0.24.0 rmqtt-net:0.5.0; do
  name=${spec%:*}
  version=${spec#*:}
  work=$(mktemp -d)
  curl -sSfL "https://static.crates.io/crates/$name/$name-$version.crate" | tar xz -C "$work"
  src="$work/$name-$version"
  # What the build does not use, and upstream's mix of CRLF and LF line ends (patched files are LF).
  rm -rf "$src/examples" "$src/.cargo_vcs_info.json" "$src/Cargo.lock" "$src/Cargo.toml.orig" "$src/README-CN.md"
  find "$src" -type f \( -name '*.rs' -o -name '*.toml' -o -name '*.md' \) -exec sed -i 's/\r$//' {} +
  patch -d "$src" -p1 --quiet --no-backup-if-mismatch <"$here/$name-$version.patch"
  rm -rf "${out:?}/$name"
  mv "$src" "$out/$name"
  rm -rf "$work"
  echo "$out/$name: $name $version with $name-$version.patch"
done
