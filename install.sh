#!/bin/sh
# Installs rbg-notify, and wires it into git or Mercurial repositories.
#
#   ./install.sh [--prefix DIR]
#       Builds rbg-notify from this checkout and installs it as
#       $PREFIX/bin/rbg-notify (PREFIX defaults to /usr/local).
#   ./install.sh --repo PATH [--repository NAME] [--config FILE] [--binary BIN]
#       Wires the repository at PATH (git, bare or not, or Mercurial) to run
#       rbg-notify on every push; NAME and FILE become its rbgateway.repository
#       and rbgateway.config settings. BIN is the binary the repository runs
#       (default: $PREFIX/bin/rbg-notify, built and installed first only when
#       it does not exist yet). Running it again changes nothing.
#   ./install.sh --repo PATH --uninstall
#       Undoes what --repo did to PATH, restoring the files it changed.
#
# Git: with no post-receive hook, hooks/post-receive becomes a symlink to BIN
# (core.hooksPath is honoured). An existing hook keeps running: it moves to
# hooks/post-receive.d/10-existing, BIN is linked as 50-rbg-notify there, and
# hooks/post-receive becomes the dispatcher from this checkout's hooks/ folder,
# which gives every entry the same stdin. Mercurial: .hg/hgrc gets
# "changegroup.rbgateway = BIN" under [hooks], every other byte kept.
# What was done is recorded in <git dir>/rbg-notify/install (.hg/rbg-notify/
# install for Mercurial), which --uninstall reads.
#
# On x86_64 Linux the binary is linked statically (glibc with crt-static), so
# it keeps working when it is copied to another server or the system's
# libraries change under a long-lived hook.
set -eu

# Root wiring a repository owned by the git user is the usual case; git
# refuses such a repository ("dubious ownership") unless it is marked safe,
# which this does for install.sh's own git commands only.
export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=safe.directory GIT_CONFIG_VALUE_0='*'

here=$(cd "$(dirname "$0")" && pwd -P)
dispatcher_src=$here/hooks/post-receive

usage() {
    sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
}

die() {
    echo "install.sh: error: $*" >&2
    exit 1
}

usage_error() {
    echo "install.sh: error: $*" >&2
    echo "install.sh: see ./install.sh --help" >&2
    exit 2
}

say() {
    echo "install.sh: $*"
}

warn() {
    echo "install.sh: warning: $*" >&2
}

# Prints the absolute form of a path, which need not exist; the folder
# holding it must.
absolute() {
    case $1 in
        /*) printf '%s\n' "$1" ;;
        *) printf '%s/%s\n' "$(pwd -P)" "$1" ;;
    esac
}

# --- Building the binary ---------------------------------------------------

build_and_install() {
    if ! command -v cargo >/dev/null 2>&1; then
        die "cargo not found; install Rust (https://rustup.rs) first, or give --binary"
    fi
    (
        cd "$here"
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
    )
    say "installed $prefix/bin/rbg-notify ($("$prefix/bin/rbg-notify" --version))"
}

# --- Recording what was done -------------------------------------------------

# Copies FILE to STATE/NAME.before, or notes that it did not exist, unless an
# earlier run already did: the first copy is the original to restore.
backup() {
    [ -e "$state/$2.before" ] || [ -e "$state/$2.absent" ] && return 0
    if [ -e "$1" ]; then
        cp -p "$1" "$state/$2.before"
    else
        : >"$state/$2.absent"
    fi
}

# Puts FILE back as it was before the first run, if nobody changed it since
# the last run; returns 1 (changing nothing) when somebody did.
restore() {
    if [ -e "$state/$2.after" ] && ! cmp -s "$1" "$state/$2.after"; then
        return 1
    fi
    if [ -e "$state/$2.absent" ]; then
        rm -f "$1"
    elif [ -e "$state/$2.before" ]; then
        cp -p "$state/$2.before" "$1"
    fi
}

# --- Git ---------------------------------------------------------------------

# Sets git config KEY to VALUE in the repository unless it already has it.
git_set() {
    [ -n "$2" ] || return 0
    if [ "$(git -C "$repo" config --get "$1" || true)" != "$2" ]; then
        git -C "$repo" config "$1" "$2"
        say "set git config $1 = $2"
    fi
}

# Prints the hooks folder git runs a push's hooks from: core.hooksPath when
# set (relative to the git dir, where push hooks run, githooks(5)), else
# <common git dir>/hooks, shared by all worktrees.
git_hooks_dir() {
    case $hooks_path in
        "") printf '%s/hooks\n' "$common" ;;
        /*) printf '%s\n' "$hooks_path" ;;
        *) printf '%s/%s\n' "$common" "$hooks_path" ;;
    esac
}

# Wires the hook; writes what it did to STATE/hook.
git_wire_hook() {
    hook=$hooks/post-receive
    entries=$hooks/post-receive.d
    mkdir -p "$hooks"
    if [ -L "$hook" ] && [ "$(readlink "$hook")" = "$binary" ]; then
        [ -e "$state/hook" ] || echo none >"$state/hook"
        say "$hook already runs $binary"
        return
    fi
    if [ -e "$entries/50-rbg-notify" ] || [ -L "$entries/50-rbg-notify" ]; then
        [ -e "$state/hook" ] || echo none >"$state/hook"
        say "$entries/50-rbg-notify already exists"
        return
    fi
    if [ ! -e "$hook" ] && [ ! -L "$hook" ] && [ ! -e "$entries" ]; then
        ln -s "$binary" "$hook"
        echo symlink >"$state/hook"
        say "linked $hook to $binary"
        return
    fi
    if [ -f "$hook" ] && cmp -s "$hook" "$dispatcher_src"; then
        ln -s "$binary" "$entries/50-rbg-notify"
        echo entry >"$state/hook"
        say "linked $entries/50-rbg-notify to $binary (the dispatcher was there)"
        return
    fi
    if [ -e "$entries" ]; then
        die "$entries exists but $hook is not rbg-notify's dispatcher, so wiring could start or stop hooks; link $binary into the folder that hook runs by hand"
    fi

    mkdir "$entries"
    if [ -L "$hook" ]; then
        # A relative link target would point elsewhere one folder down.
        target=$(readlink "$hook")
        printf '%s\n' "$target" >"$state/link"
        case $target in
            /*) ln -s "$target" "$entries/10-existing" ;;
            *) ln -s "../$target" "$entries/10-existing" ;;
        esac
        rm "$hook"
    else
        mv "$hook" "$entries/10-existing"
    fi
    ln -s "$binary" "$entries/50-rbg-notify"
    cp "$dispatcher_src" "$hook"
    chmod 0755 "$hook"
    echo dispatcher >"$state/hook"
    say "moved the existing $hook to $entries/10-existing"
    say "installed the dispatcher as $hook, and linked $entries/50-rbg-notify to $binary"
}

git_install() {
    common=$(cd "$repo" && cd "$(git rev-parse --git-common-dir)" && pwd -P)
    hooks_path=$(git -C "$repo" config --type=path --get core.hooksPath || true)
    hooks=$(git_hooks_dir)
    state=$common/rbg-notify/install
    mkdir -p "$state"
    printf '%s\n' "$hooks" >"$state/hooks"
    printf '%s\n' "$binary" >"$state/binary"

    if [ -n "$hooks_path" ]; then
        say "core.hooksPath is set: wiring $hooks, which every repository using it shares"
    fi
    git_wire_hook

    backup "$common/config" config
    git_set rbgateway.repository "$name"
    git_set rbgateway.config "$config"
    cp -p "$common/config" "$state/config.after"
}

git_uninstall() {
    common=$(cd "$repo" && cd "$(git rev-parse --git-common-dir)" && pwd -P)
    state=$common/rbg-notify/install
    if [ ! -d "$state" ]; then
        say "nothing to undo: $repo was not wired by install.sh"
        return
    fi
    hooks=$(cat "$state/hooks")
    binary=$(cat "$state/binary")
    hook=$hooks/post-receive
    entries=$hooks/post-receive.d

    case $(cat "$state/hook" 2>/dev/null || echo none) in
        symlink)
            if [ -L "$hook" ] && [ "$(readlink "$hook")" = "$binary" ]; then
                rm "$hook"
                say "removed $hook"
            else
                warn "$hook no longer links to $binary; left alone"
            fi
            ;;
        entry)
            rm -f "$entries/50-rbg-notify"
            say "removed $entries/50-rbg-notify"
            ;;
        dispatcher)
            rm -f "$entries/50-rbg-notify"
            git_restore_hook
            ;;
    esac

    if restore "$common/config" config; then
        say "restored $common/config"
    else
        warn "$common/config changed since install.sh wrote it; unsetting rbgateway.* only"
        git -C "$repo" config --unset rbgateway.repository || true
        git -C "$repo" config --unset rbgateway.config || true
    fi
    rm -r "$state"
    remove_own_files "$common/rbg-notify"
}

# Puts the hook moved into post-receive.d back, unless other entries were
# added there since, which the dispatcher must keep running.
git_restore_hook() {
    others=$(ls -A "$entries" | grep -vx '10-existing' || true)
    if [ -n "$others" ] || ! cmp -s "$hook" "$dispatcher_src"; then
        warn "$entries holds other entries or $hook changed; kept the dispatcher"
        return
    fi
    rm "$hook"
    if [ -e "$state/link" ]; then
        ln -s "$(cat "$state/link")" "$hook"
        rm "$entries/10-existing"
    else
        mv "$entries/10-existing" "$hook"
    fi
    rmdir "$entries"
    say "put the original $hook back"
}

# --- Mercurial -----------------------------------------------------------------

# Quotes a path for the shell Mercurial runs hook commands with, only when
# it needs it.
shell_word() {
    case $1 in
        *[!A-Za-z0-9_./+-]*) printf "'%s'\n" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")" ;;
        *) printf '%s\n' "$1" ;;
    esac
}

# Prints "=VALUE" when KEY is set in [SECTION] of the hgrc (the last
# setting wins in Mercurial, as here), and nothing when it is not.
hgrc_get() {
    HGRC_SECTION=$1 HGRC_KEY=$2 awk "$hgrc_awk"'
        in_section && key == ENVIRON["HGRC_KEY"] { found = 1; value = val }
        END { if (found) print "=" value }' "$hgrc"
}

# Shared awk: tracks the section (in_section) and splits "key = value" lines.
hgrc_awk='
    /^[ \t]*\[.*\][ \t]*$/ {
        s = $0; gsub(/^[ \t]*\[|\][ \t]*$/, "", s)
        in_section = (s == ENVIRON["HGRC_SECTION"]); header = 1; key = ""
    }
    !/^[ \t]*\[.*\][ \t]*$/ {
        header = 0; key = ""
        if (index($0, "=") && $0 !~ /^[ \t]*[#;]/) {
            key = $0; sub(/[ \t]*=.*/, "", key); sub(/^[ \t]*/, "", key)
            val = $0; sub(/^[^=]*=[ \t]*/, "", val); sub(/[ \t]*$/, "", val)
        }
    }
'

# Sets KEY = VALUE in [SECTION] of the hgrc, keeping every other byte: the
# last KEY line of the section is replaced, else the line goes right under
# the section's first header, else a new section is appended.
hgrc_set() {
    [ -n "$3" ] || return 0
    current=$(hgrc_get "$1" "$2")
    [ "$current" != "=$3" ] || return 0
    tmp=$hgrc.rbg-notify.tmp
    if [ -n "$current" ]; then
        # Replace the last KEY line of the section: count them first.
        count=$(HGRC_SECTION=$1 HGRC_KEY=$2 awk "$hgrc_awk"'
            in_section && key == ENVIRON["HGRC_KEY"] { n++ } END { print n + 0 }' "$hgrc")
        HGRC_SECTION=$1 HGRC_KEY=$2 HGRC_LINE="$2 = $3" HGRC_LAST=$count awk "$hgrc_awk"'
            in_section && key == ENVIRON["HGRC_KEY"] && ++n == ENVIRON["HGRC_LAST"] + 0 {
                print ENVIRON["HGRC_LINE"]; next
            }
            { print }' "$hgrc" >"$tmp"
        cat "$tmp" >"$hgrc"
    elif HGRC_SECTION=$1 HGRC_KEY=$2 awk "$hgrc_awk"'
            in_section && header { found = 1 } END { exit !found }' "$hgrc"; then
        HGRC_SECTION=$1 HGRC_LINE="$2 = $3" awk "$hgrc_awk"'
            { print }
            in_section && header && !done { print ENVIRON["HGRC_LINE"]; done = 1 }' \
            "$hgrc" >"$tmp"
        cat "$tmp" >"$hgrc"
    else
        # A new section, after a newline if the file lacks its last one.
        if [ -s "$hgrc" ]; then
            [ -z "$(tail -c 1 "$hgrc")" ] || echo >>"$hgrc"
            echo >>"$hgrc"
        fi
        printf '[%s]\n%s = %s\n' "$1" "$2" "$3" >>"$hgrc"
    fi
    rm -f "$tmp"
    say "set $2 = $3 in [$1] of $hgrc"
}

hg_install() {
    hgrc=$repo/.hg/hgrc
    state=$repo/.hg/rbg-notify/install
    mkdir -p "$state"
    printf '%s\n' "$binary" >"$state/binary"
    backup "$hgrc" hgrc
    [ -e "$hgrc" ] || : >"$hgrc"
    hgrc_set hooks changegroup.rbgateway "$(shell_word "$binary")"
    hgrc_set rbgateway repository "$name"
    hgrc_set rbgateway config "$config"
    cp -p "$hgrc" "$state/hgrc.after"
}

hg_uninstall() {
    hgrc=$repo/.hg/hgrc
    state=$repo/.hg/rbg-notify/install
    if [ ! -d "$state" ]; then
        say "nothing to undo: $repo was not wired by install.sh"
        return
    fi
    if restore "$hgrc" hgrc; then
        say "restored $hgrc"
    else
        die "$hgrc changed since install.sh wrote it; remove changegroup.rbgateway from [hooks] (and the [rbgateway] keys) by hand, then remove $state"
    fi
    rm -r "$state"
    remove_own_files "$repo/.hg/rbg-notify"
}

# --- Ledger ------------------------------------------------------------------

# Starts the repository's ledger (what it holds now, so that a push whose
# hook dies before recording it is still found) with one `--retry`, run as
# the repository's owner; a run as anyone else would leave files the hooks
# cannot write. Without a settings file yet, the first push starts it.
start_ledger() {
    if [ "$(id -u)" != "${owner%:*}" ]; then
        say "the ledger starts with the first push; to start it now, run once as the repository's owner: (cd '$repo' && '$binary' --retry)"
        return
    fi
    if out=$(cd "$repo" && "$binary" --retry --quiet 2>&1); then
        say "started the ledger in $folder/rbg-notify"
    else
        say "the ledger starts with the first push (--retry said: $(printf '%s' "$out" | head -n 1))"
    fi
}

# Removes rbg-notify's ledger and an empty spool from FOLDER, and FOLDER once
# empty; a spool still holding deliveries is kept, and said so.
remove_own_files() {
    rm -f "$1/ledger.json" "$1/ledger.json.broken" "$1/ledger.lock" "$1/ca-bundle.pem" "$1/spool/lock"
    rmdir "$1/spool" 2>/dev/null || true
    if [ -d "$1/spool" ]; then
        warn "kept $1/spool: it holds deliveries not yet sent"
    fi
    rmdir "$1" 2>/dev/null || true
}

# --- Command line ----------------------------------------------------------------

prefix=${PREFIX:-/usr/local}
repo=
name=
config=
binary=
uninstall=
needs_value() {
    [ $# -ge 2 ] || usage_error "$1 needs a value"
}
while [ $# -gt 0 ]; do
    case $1 in
        --prefix) needs_value "$@"; prefix=$2; shift 2 ;;
        --prefix=*) prefix=${1#--prefix=}; shift ;;
        --repo) needs_value "$@"; repo=$2; shift 2 ;;
        --repo=*) repo=${1#--repo=}; shift ;;
        --repository) needs_value "$@"; name=$2; shift 2 ;;
        --repository=*) name=${1#--repository=}; shift ;;
        --config) needs_value "$@"; config=$2; shift 2 ;;
        --config=*) config=${1#--config=}; shift ;;
        --binary) needs_value "$@"; binary=$2; shift 2 ;;
        --binary=*) binary=${1#--binary=}; shift ;;
        --uninstall) uninstall=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage_error "unknown argument \"$1\"" ;;
    esac
done

prefix=$(absolute "$prefix")
if [ -z "$repo" ]; then
    [ -z "$name$config$binary$uninstall" ] ||
        usage_error "--repository, --config, --binary and --uninstall need --repo"
    build_and_install
    exit 0
fi

[ -d "$repo" ] || die "\"$repo\" is not a folder"
repo=$(cd "$repo" && pwd -P)
if [ -d "$repo/.hg" ]; then
    kind=hg
elif git -C "$repo" rev-parse --git-dir >/dev/null 2>&1; then
    kind=git
else
    die "\"$repo\" is neither a git nor a Mercurial repository"
fi

if [ -n "$uninstall" ]; then
    [ -z "$name$config$binary" ] || usage_error "--uninstall takes no other option than --repo"
    "${kind}_uninstall"
    exit 0
fi

if [ -n "$binary" ]; then
    [ -f "$binary" ] && [ -x "$binary" ] || die "\"$binary\" is not an executable file"
    binary=$(cd "$(dirname "$binary")" && printf '%s/%s\n' "$(pwd -P)" "$(basename "$binary")")
else
    binary=$prefix/bin/rbg-notify
    [ -x "$binary" ] || build_and_install
    binary=$(cd "$(dirname "$binary")" && printf '%s/%s\n' "$(pwd -P)" "$(basename "$binary")")
fi
if [ -n "$config" ]; then
    config=$(absolute "$config")
    [ -f "$config" ] || warn "$config does not exist yet"
fi

"${kind}_install"
case $kind in
    git) folder=$common ;;
    hg) folder=$repo/.hg ;;
esac
owner=$(stat -c %u:%g "$folder")
# Hooks run as the repository's owner: the folder where they keep their
# spool and ledger, the hgrc Mercurial only trusts from its owner, the git
# config and the hooks folder's new entries must be theirs, not root's.
if [ "$(id -u)" = 0 ] && [ "$owner" != 0:0 ]; then
    chown -R "$owner" "$folder/rbg-notify"
    case $kind in
        hg) chown "$owner" "$repo/.hg/hgrc" ;;
        git)
            # git config rewrites the file, as root's.
            chown "$owner" "$common/config"
            # A hooks folder outside the repository (core.hooksPath) may be
            # shared: its owners are left as they are.
            case $hooks in
                "$common"/*)
                    for path in "$hook" "$entries" "$entries/50-rbg-notify"; do
                        if [ -e "$path" ] || [ -L "$path" ]; then
                            chown -h "$owner" "$path"
                        fi
                    done
                    ;;
            esac
            ;;
    esac
fi
start_ledger
say "wired $repo ($kind); check it with: (cd '$repo' && '$binary' --check)"
say "undo with: $0 --repo '$repo' --uninstall"
