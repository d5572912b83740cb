#!/bin/sh
# Builds dist/kiln-<version>-linux-x86_64.tar.gz (`make bundle`), a relocatable Kiln for hosts that have
# neither Swift nor Kiln's libraries (a lent GPU machine, say). Unpacked, it holds:
#
#   kiln-<version>/bin/kiln, bin/kiln-bench    launchers (scripts/bundle/launcher.sh): library path,
#                                              kernel and data folders, OpenCL vendor files
#   libexec/kiln, libexec/kiln-bench           the programs, built with the static Swift standard library
#                                              (so Foundation and the Swift runtime travel inside them), stripped
#   lib/                                       every shared library they need beyond glibc, libstdc++ and
#                                              libgcc_s: OpenBLAS with libgfortran and libquadmath, the
#                                              ocl-icd loader libOpenCL.so.1, zlib, libcrypto, CLBlast;
#                                              never a vendor's OpenCL driver
#   share/kiln/Kernels, share/kiln/data        the OpenCL sources with the shipped tuning database, digits
#   share/kiln/OpenCL/vendors/nvidia.icd       names libnvidia-opencl.so.1, for hosts without the file
#   share/kiln/peers/                          bench/peers/*.py (PyTorch, efficient-kan, fla), for the GPU script
#   share/doc/                                 the bundled libraries' copyright files
#   scripts/gpu-check.sh, scripts/gpu-summary.py, VERSION
#
# The programs are built in .build-bundle (a build folder of its own: the static standard library and the
# bench package's flags would otherwise rebuild .build/release). Each program carries its own copy of the
# Swift runtime, Foundation and ICU's data (about 60 MB stripped), so the archive is about 59 MiB;
# `make gpu-payload` repacks it with xz, which stores the two programs' common bytes once (about 23 MiB).
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
version=$(cat VERSION)
name="kiln-$version"
archive="dist/$name-linux-x86_64.tar.gz"
scratch="$root/.build-bundle"
swift=${SWIFT:-swift}

if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
    echo "error: make bundle builds linux-x86_64 bundles; this machine is $(uname -s)-$(uname -m)" >&2
    exit 1
fi

# Both programs from the bench package, whose dependency is this package: one build of the library.
for product in kiln kiln-bench; do
    $swift build -c release --static-swift-stdlib --package-path bench --scratch-path "$scratch" --product "$product"
done
bin=$($swift build -c release --static-swift-stdlib --package-path bench --scratch-path "$scratch" --show-bin-path)

mkdir -p dist
stage=$(mktemp -d "$root/dist/.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
top="$stage/$name"
mkdir -p "$top/bin" "$top/libexec" "$top/lib" "$top/share/kiln/OpenCL/vendors" "$top/share/kiln/peers" "$top/share/doc" "$top/scripts"

for product in kiln kiln-bench; do
    cp "$bin/$product" "$top/libexec/$product"
    strip --strip-all "$top/libexec/$product"
    cp scripts/bundle/launcher.sh "$top/bin/$product"
    chmod 755 "$top/bin/$product"
done

# Libraries a host may lack: everything ldd resolves outside the C and C++ runtimes every Linux host has.
base='^(linux-vdso|ld-linux-x86-64|libc|libm|libdl|libpthread|librt|libutil|libresolv|libstdc\+\+|libgcc_s)\.so'
for product in kiln kiln-bench; do
    ldd "$top/libexec/$product" > "$stage/ldd.txt"
    if grep -q 'not found' "$stage/ldd.txt"; then
        echo "error: $product needs libraries this machine lacks:" >&2
        grep 'not found' "$stage/ldd.txt" >&2
        exit 1
    fi
    awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' "$stage/ldd.txt" | while read -r soname path; do
        if echo "$soname" | grep -Eq "$base"; then continue; fi
        case "$path" in
        /opt/swift/* | */usr/lib/swift/* | "$root"/*)
            echo "error: $product links $path from the Swift toolchain or the build tree; the static standard library should have taken it in" >&2
            exit 1
            ;;
        esac
        case "$soname" in
        libnvidia* | libcuda* | libpocl* | libamdocl* | libigdrcl*)
            echo "error: $product links the vendor driver $path; a bundle must never carry one" >&2
            exit 1
            ;;
        esac
        if [ ! -e "$top/lib/$soname" ]; then
            cp -L "$path" "$top/lib/$soname"
            strip --strip-unneeded "$top/lib/$soname"
            # dpkg knows a file by the path its package installed (/lib or /usr/lib, before and after usrmerge).
            real=$(readlink -f "$path")
            package=$({ dpkg -S "$real" || dpkg -S "$(dirname "$path")/$(basename "$real")"; } 2>/dev/null | head -n 1 | cut -d: -f1 || true)
            if [ -n "$package" ] && [ -f "/usr/share/doc/$package/copyright" ]; then
                cp "/usr/share/doc/$package/copyright" "$top/share/doc/$package.copyright"
            fi
        fi
    done
done

cp -R Kernels "$top/share/kiln/Kernels"
cp -R data "$top/share/kiln/data"
echo "libnvidia-opencl.so.1" > "$top/share/kiln/OpenCL/vendors/nvidia.icd"
cp bench/peers/*.py "$top/share/kiln/peers/"
cp scripts/gpu-check.sh scripts/gpu-summary.py "$top/scripts/"
chmod 755 "$top/scripts/gpu-check.sh" "$top/scripts/gpu-summary.py"
cp VERSION "$top/VERSION"

tar -C "$stage" -cf - "$name" | gzip > "$stage/archive.tar.gz"
bytes=$(stat -c %s "$stage/archive.tar.gz")
mv "$stage/archive.tar.gz" "$archive"
echo "wrote $archive ($(awk "BEGIN { printf \"%.1f\", $bytes / 1048576 }") MiB): $(ls "$top/lib" | tr '\n' ' ')"
