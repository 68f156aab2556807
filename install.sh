#!/bin/sh
# Builds rbg-notify from this checkout and installs it as $PREFIX/bin/rbg-notify.
#
#   ./install.sh                 build and install to /usr/local/bin
#   PREFIX=$HOME/.local ./install.sh
#
# On x86_64 Linux the binary is linked statically (glibc with crt-static), so
# it keeps working when it is copied to another server or the system's
# libraries change under a long-lived hook.
set -eu

usage() {
    sed -n '2,5s/^# \{0,1\}//p' "$0"
}

prefix=${PREFIX:-/usr/local}
while [ $# -gt 0 ]; do
    case $1 in
        --prefix) prefix=${2:?--prefix needs a folder}; shift 2 ;;
        --prefix=*) prefix=${1#--prefix=}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: error: unknown argument \"$1\"" >&2; usage >&2; exit 2 ;;
    esac
done

cd "$(dirname "$0")"
if ! command -v cargo >/dev/null 2>&1; then
    echo "install.sh: error: cargo not found; install Rust (https://rustup.rs) first" >&2
    exit 2
fi

case $(uname -sm) in
    "Linux x86_64")
        target=x86_64-unknown-linux-gnu
        RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
            cargo build --release --locked --target "$target"
        built=target/$target/release/rbg-notify
        ;;
    *)
        cargo build --release --locked
        built=target/release/rbg-notify
        ;;
esac

mkdir -p "$prefix/bin"
install -m 0755 "$built" "$prefix/bin/rbg-notify"
echo "install.sh: installed $prefix/bin/rbg-notify ($("$prefix/bin/rbg-notify" --version))"
