#!/bin/sh
# Launcher of a Kiln bundle (`make bundle`): installed as bin/kiln and bin/kiln-bench, it runs
# libexec/<its own name> with
# - LD_LIBRARY_PATH starting with the bundle's lib/ (OpenBLAS and its Fortran runtime, the ocl-icd OpenCL
#   loader, zlib, libcrypto, CLBlast), so a host without them runs the bundle as it is;
# - KILN_KERNELS and KILN_DATA naming the bundle's share/kiln/Kernels and share/kiln/data unless already set,
#   so the bundle never falls back on another tree's kernels, and a bundle without them fails loudly;
# - OCL_ICD_VENDORS when the host's OpenCL vendor files lack NVIDIA's driver: the host's files in
#   /etc/OpenCL/vendors (PoCL's, say) are used as they are; where libnvidia-opencl.so.1 is on the host but
#   no file names it (GPU containers often lack nvidia.icd), the bundle's share/kiln/OpenCL/vendors/nvidia.icd
#   is added (alone when the host has no vendor files; with the host's files, in a folder under the cache,
#   $KILN_CACHE_DIR/opencl-vendors/). An OCL_ICD_VENDORS or OPENCL_VENDOR_PATH set by the user is kept.
# KILN_LAUNCHER_VERBOSE=1 prints what it set on standard error.
set -eu

self=$(readlink -f -- "$0")
root=$(dirname -- "$(dirname -- "$self")")
name=$(basename -- "$self")
program="$root/libexec/$name"
if [ ! -x "$program" ]; then
    echo "error: $program is missing; unpack the whole bundle again" >&2
    exit 1
fi

say() {
    if [ "${KILN_LAUNCHER_VERBOSE:-0}" = 1 ]; then echo "kiln launcher: $*" >&2; fi
}

library_path="$root/lib"

# The folder holding NVIDIA's OpenCL driver library, if the host has one.
nvidia_folder() {
    old_ifs=$IFS
    IFS=:
    for folder in ${LD_LIBRARY_PATH:-} /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib; do
        if [ -n "$folder" ] && [ -e "$folder/libnvidia-opencl.so.1" ]; then
            IFS=$old_ifs
            echo "$folder"
            return
        fi
    done
    IFS=$old_ifs
    if command -v ldconfig >/dev/null 2>&1; then
        ldconfig -p 2>/dev/null | sed -n 's/^[[:space:]]*libnvidia-opencl\.so\.1 (.*x86-64.*) => \(.*\)\/libnvidia-opencl\.so\.1$/\1/p' | head -n 1
    fi
}

if [ -z "${OCL_ICD_VENDORS:-}" ] && [ -z "${OPENCL_VENDOR_PATH:-}" ]; then
    system_vendors=/etc/OpenCL/vendors
    system_files=$(ls "$system_vendors"/*.icd 2>/dev/null || true)
    nvidia=$(nvidia_folder)
    if [ -z "$system_files" ]; then
        # No vendor files at all: the bundle's nvidia.icd (harmless where there is no NVIDIA driver).
        export OCL_ICD_VENDORS="$root/share/kiln/OpenCL/vendors"
        say "no files in $system_vendors; OCL_ICD_VENDORS=$OCL_ICD_VENDORS"
    elif [ -n "$nvidia" ] && ! grep -qs libnvidia-opencl $system_files; then
        # The host's files and NVIDIA's: one folder per set of host files, made once and renamed into place.
        cache=${KILN_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/kiln}
        key=$(ls -l $system_files | cksum | cut -d ' ' -f 1)
        merged="$cache/opencl-vendors/$key"
        if [ ! -d "$merged" ] && mkdir -p "$cache/opencl-vendors" 2>/dev/null; then
            staging=$(mktemp -d "$cache/opencl-vendors/.staging.XXXXXX")
            cp $system_files "$root/share/kiln/OpenCL/vendors/nvidia.icd" "$staging/"
            mv -T "$staging" "$merged" 2>/dev/null || rm -rf "$staging"
        fi
        if [ -d "$merged" ]; then
            export OCL_ICD_VENDORS="$merged"
        else
            echo "kiln launcher: note: cannot write $cache; using NVIDIA's OpenCL alone, not the files in $system_vendors" >&2
            export OCL_ICD_VENDORS="$root/share/kiln/OpenCL/vendors"
        fi
        say "$system_vendors lacks NVIDIA's file; OCL_ICD_VENDORS=$OCL_ICD_VENDORS"
    else
        say "using the vendor files in $system_vendors"
    fi
    if [ -n "$nvidia" ]; then
        # dlopen finds the driver by name only in the library path or the loader's cache.
        case ":${LD_LIBRARY_PATH:-}:" in
        *":$nvidia:"*) ;;
        *) library_path="$library_path:$nvidia" ;;
        esac
        say "NVIDIA's OpenCL driver in $nvidia"
    fi
fi

export LD_LIBRARY_PATH="$library_path${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export KILN_KERNELS="${KILN_KERNELS:-$root/share/kiln/Kernels}"
export KILN_DATA="${KILN_DATA:-$root/share/kiln/data}"
say "LD_LIBRARY_PATH=$LD_LIBRARY_PATH KILN_KERNELS=$KILN_KERNELS KILN_DATA=$KILN_DATA"
exec "$program" "$@"
