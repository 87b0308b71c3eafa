#!/usr/bin/env bash
# Builds the uWebSockets peer (bench/peers/uws/server.cpp) into
# target/peers/uws/uws-peer: the uWebSockets and uSockets sources come from
# the crates.io crate libuwebsockets-sys (which vendors both; pinned by
# version and checksum), uSockets builds with its own Makefile, the server
# with one g++ line. No SSL, no zlib. Needs make, gcc and g++ (C++20).
# Prints the binary's path. About a minute on a 2-core box; skipped when the
# binary is newer than server.cpp.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
CRATE=libuwebsockets-sys
VERSION=0.0.10
SHA256=d51e3baec29ccd68a26e61be5376c35a778f7ebd8584041e7c535e1a80786873
OUT="$ROOT/target/peers/uws"
BIN="$OUT/uws-peer"

if [ -x "$BIN" ] && [ "$BIN" -nt "$HERE/server.cpp" ] && [ "$BIN" -nt "$HERE/build.sh" ]; then
    echo "$BIN"
    exit 0
fi
for tool in curl make gcc g++ sha256sum; do
    command -v "$tool" >/dev/null || { echo "uws/build.sh: needs $tool" >&2; exit 1; }
done
mkdir -p "$OUT"
archive="$OUT/$CRATE-$VERSION.crate"
if [ ! -f "$archive" ]; then
    curl -fsSL --retry 3 -o "$archive.part" "https://static.crates.io/crates/$CRATE/$CRATE-$VERSION.crate"
    mv "$archive.part" "$archive"
fi
echo "$SHA256  $archive" | sha256sum -c --quiet - || { echo "uws/build.sh: $archive: checksum mismatch" >&2; exit 1; }
src="$OUT/$CRATE-$VERSION"
rm -rf "$src"
tar -xzf "$archive" -C "$OUT"
uws="$src/uWebSockets"
# uSockets' Makefile also tries Windows' lib.exe; its log is shown on failure only.
make -s -C "$uws/uSockets" >"$OUT/make.log" 2>&1 || { cat "$OUT/make.log" >&2; exit 1; }
g++ -std=c++20 -O3 -flto -DNDEBUG -DUWS_NO_ZLIB -DLIBUS_NO_SSL \
    -I"$uws/src" -I"$uws/uSockets/src" \
    "$HERE/server.cpp" "$uws/uSockets/uSockets.a" -o "$BIN"
echo "$BIN"
