#!/bin/bash
# make-expectations.sh: record what the REAL reference xkvm does for every case in cases.json.
#
# Regenerate test/conformance/expectations.json (as root, from the repository root, on a host
# with qemu-system-x86, qemu-utils, ovmf, iproute2, util-linux and node installed):
#
#     test/conformance/make-expectations.sh
#
# Do not edit expectations.json by hand; change cases.json and rerun this script.
#
# What it does:
#   * the reference is ../shared/reference/xkvm relative to the repository root (so any checkout
#     with shared/ beside it works); it runs as an ordinary user (created if missing, default
#     "xkvmtest", override with XKVM_TEST_USER) inside a network namespace that holds the Linux
#     bridges br0 and br1 (a second namespace also holds virbr0, for cases with "netns":
#     "virbr0"), cwd = a fresh copy of the fixture at /tmp/xkvm-conformance/case, stdin
#     /dev/null, environment cleared to PATH, HOME, USER, LOGNAME, LANG=C plus the case's "env";
#   * each case gets its own copy of the fixture (the reference copies OVMF_VARS.fd for a
#     missing --uefi-nvram file even in --dry-run, so cases must not see each other's files);
#   * the raw status/stdout/stderr are turned into expectations.json by expectations-tool.mjs,
#     which also recovers the qemu argv from the reference's quote_cmd line.
# Environment knobs: XKVM_TEST_USER, XKVM_EXPECTATIONS_OUT (default: expectations.json beside
# this script), XKVM_CASE_TIMEOUT (seconds per case, default 60).
set -euo pipefail
export LC_ALL=C

die() { echo "make-expectations: $*" >&2; exit 1; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
ref_rel=../shared/reference/xkvm
cases=$here/cases.json
tool=$here/expectations-tool.mjs
out=${XKVM_EXPECTATIONS_OUT:-$here/expectations.json}
user=${XKVM_TEST_USER:-xkvmtest}
case_timeout=${XKVM_CASE_TIMEOUT:-60}
base=/tmp/xkvm-conformance
fixture=$base/case
IP=/usr/sbin/ip
RUNUSER=/usr/sbin/runuser
USERADD=/usr/sbin/useradd
USERDEL=/usr/sbin/userdel
created_user=0
QEMU=/usr/bin/qemu-system-x86_64
QEMU_IMG=/usr/bin/qemu-img
OVMF_VARS=/usr/share/OVMF/OVMF_VARS.fd

[ "$(id -u)" = 0 ] || die "must run as root (it creates network namespaces and a test user)"
[ -f "$repo/$ref_rel" ] || die "reference not found: $repo/$ref_rel"
ref=$(realpath -e "$repo/$ref_rel")
[ -x "$ref" ] || die "reference is not executable: $ref"
for tool_path in "$IP" "$RUNUSER" "$USERADD" "$USERDEL" "$QEMU" "$QEMU_IMG" /usr/bin/getopt /usr/bin/timeout /usr/bin/flock; do
    [ -x "$tool_path" ] || die "missing $tool_path"
done
[ -f "$OVMF_VARS" ] || die "missing $OVMF_VARS (package ovmf)"
command -v node >/dev/null || die "missing node"

started=$(date +%s%N)

# one generation at a time: the fixture path is fixed
exec 9>/tmp/xkvm-conformance.lock
flock -n 9 || die "another make-expectations.sh is running (lock /tmp/xkvm-conformance.lock)"

# --- namespaces --------------------------------------------------------------------------------
# Names follow test/support/netns.ts: xkvmt-<pid of the owner>-<tag>, so sweepStaleNetns()
# (and the sweep below) can tell a leftover from a namespace that is still in use.
ns_main=xkvmt-$$-gen
ns_virbr=xkvmt-$$-genv
raw=""

delete_netns() {
    local ns=$1 pid
    for pid in $("$IP" netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    "$IP" netns delete "$ns" 2>/dev/null || true
}

cleanup() {
    delete_netns "$ns_main"
    delete_netns "$ns_virbr"
    [ -z "$raw" ] || rm -rf "$raw"
    rm -rf "$base"
    # A user this run created goes with it (with its home and group): the host is left as it was.
    [ "$created_user" = 0 ] || "$USERDEL" --remove "$user" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

sweep_stale_netns() {
    local ns owner
    for ns in $("$IP" netns list | awk '{print $1}'); do
        [[ $ns =~ ^xkvmt-([0-9]+)- ]] || continue
        owner=${BASH_REMATCH[1]}
        [ -d "/proc/$owner" ] && continue
        echo "make-expectations: removing stale namespace $ns" >&2
        delete_netns "$ns"
    done
}
sweep_stale_netns

make_netns() {
    local ns=$1 br; shift
    "$IP" netns add "$ns"
    "$IP" -n "$ns" link set lo up
    for br in "$@"; do
        "$IP" -n "$ns" link add "$br" type bridge
        "$IP" -n "$ns" link set "$br" up
    done
}
make_netns "$ns_main" br0 br1
make_netns "$ns_virbr" br0 br1 virbr0

# --- the ordinary user -------------------------------------------------------------------------
if ! getent passwd "$user" >/dev/null; then
    if "$USERADD" --create-home --user-group --shell /usr/sbin/nologin --comment "xkvm test user" "$user"; then
        created_user=1
    else
        getent passwd "$user" >/dev/null || die "cannot create user $user"
    fi
fi
home=$(getent passwd "$user" | cut -d: -f6)
group=$(id -gn "$user")
base_env=( "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "HOME=$home"
           "USER=$user" "LOGNAME=$user" "LANG=C" )

# --- fixture -----------------------------------------------------------------------------------
# Keep in step with buildReferenceFixture() in test/support/reference.ts.
rm -rf "$base"
mkdir -m 0755 "$base"
tpl=$base/template
mkdir -m 0755 "$tpl" "$tpl/images"
"$QEMU_IMG" create -q -f qcow2 "$tpl/disk.qcow2" 64M
"$QEMU_IMG" create -q -f raw "$tpl/disk.raw" 16M
"$QEMU_IMG" create -q -f raw "$tpl/disk1.img" 1M
"$QEMU_IMG" create -q -f qcow2 "$tpl/images/root.qcow2" 64M
"$QEMU_IMG" create -q -f qcow2 "$tpl/my disk.qcow2" 16M
cp "$OVMF_VARS" "$tpl/vars.fd"
cp "$OVMF_VARS" "$tpl/vars-ro.fd"
chown -R "$user:$group" "$tpl"
chmod 0644 "$tpl/vars.fd"
chmod 0444 "$tpl/vars-ro.fd"
"$QEMU_IMG" create -q -f raw "$tpl/secret.img" 1M   # root's, 0600: unreadable for the user
chmod 0600 "$tpl/secret.img"

# PATH for the "qemu missing" case: every tool the reference may call, except qemu-system-*
mkdir -m 0755 "$base/noqemu-bin"
for t in getopt uname cat sed awk cp rm qemu-img; do
    ln -s "$(command -v "$t")" "$base/noqemu-bin/$t"
done

raw=$(mktemp -d /tmp/xkvm-conformance-raw.XXXXXX)

# --- helpers -----------------------------------------------------------------------------------
# prints "set:VALUE" for the --uefi-nvram value the reference will use (the last one wins),
# parsed by the same getopt call as the reference; prints nothing without --uefi-nvram
nvram_arg() {
    local parsed
    parsed=$(getopt -q --name xkvm --options "hd:n:v" \
        --long "bios:,help,dowait,disk:,dry-run,kvm:,no-dowait,netdev:,uefi,uefi-nvram:,verbose" \
        -- "$@") || return 0
    eval set -- "$parsed"
    local found="" seen=false
    while [ $# -ne 0 ]; do
        case "$1" in
            --uefi-nvram) found=$2; seen=true; shift;;
            -d|--disk|-n|--netdev|--kvm|--bios) shift;;
            --) break;;
        esac
        shift
    done
    ! $seen || printf 'set:%s' "$found"
}

# file_kind AS_GIVEN RESOLVED: what the reference's --uefi-nvram value names in the fixture
file_kind() {
    if [ -z "$1" ]; then echo "empty-path"
    elif [ -L "$2" ]; then echo symlink
    elif [ -f "$2" ]; then echo file
    elif [ -d "$2" ]; then echo directory
    elif [ -e "$2" ]; then echo other
    else echo missing
    fi
}

# --- run every case ----------------------------------------------------------------------------
count=0
while IFS= read -r -d '' name <&3; do
    IFS= read -r -d '' netns <&3
    IFS= read -r -d '' nenv <&3
    case_env=( )
    for ((k = 0; k < nenv; k++)); do IFS= read -r -d '' e <&3; case_env+=( "$e" ); done
    IFS= read -r -d '' nargs <&3
    args=( )
    for ((k = 0; k < nargs; k++)); do IFS= read -r -d '' a <&3; args+=( "$a" ); done

    ns=$ns_main
    [ "$netns" = virbr0 ] && ns=$ns_virbr

    rm -rf "$fixture"
    cp -a "$tpl" "$fixture"

    nv_path=""
    nv_set=false
    nv=$(nvram_arg "${args[@]}")
    if [ "${nv#set:}" != "$nv" ]; then
        nv_set=true
        nv_path=${nv#set:}
    fi
    nv_abs=$nv_path
    [ "${nv_abs#/}" != "$nv_abs" ] || nv_abs=$fixture/$nv_path
    nv_before=""
    $nv_set && nv_before=$(file_kind "$nv_path" "$nv_abs")

    set +e
    (
        cd "$fixture" &&
        exec /usr/bin/timeout --kill-after=5 "$case_timeout" \
            "$IP" netns exec "$ns" "$RUNUSER" -u "$user" -- \
            /usr/bin/env -i "${base_env[@]}" "${case_env[@]}" "$ref" "${args[@]}"
    ) </dev/null >"$raw/$count.stdout" 2>"$raw/$count.stderr"
    status=$?
    set -e
    [ "$status" -ne 124 ] && [ "$status" -ne 137 ] || die "case $name timed out after ${case_timeout}s"

    echo "$status" >"$raw/$count.status"
    if $nv_set; then
        printf '%s\n%s\n%s\n' "$nv_path" "$nv_before" "$(file_kind "$nv_path" "$nv_abs")" >"$raw/$count.nvram"
    else
        : >"$raw/$count.nvram"
    fi
    for pid in $("$IP" netns pids "$ns"); do
        die "case $name left process $pid running in $ns"
    done
    printf '%-48s exit %s\n' "$name" "$status" >&2
    count=$((count + 1))
done 3< <(node "$tool" cases "$cases")
[ "$count" -gt 0 ] || die "no cases read from $cases"

# --- write expectations.json -------------------------------------------------------------------
meta=$raw/meta.json
QEMU_VERSION=$("$QEMU" --version | head -n1) \
GETOPT_VERSION=$(getopt --version | head -n1) \
BASH_VERSION_LINE=$(bash --version | head -n1) \
REF_SHA=$(sha256sum "$ref" | cut -d' ' -f1) \
REF=$ref FIXTURE=$fixture TEST_USER=$user \
node -e '
const e = process.env;
const meta = {
  generated_by: "test/conformance/make-expectations.sh (as root, from the repository root)",
  reference: e.REF,
  reference_sha256: e.REF_SHA,
  qemu_version: e.QEMU_VERSION,
  getopt_version: e.GETOPT_VERSION,
  bash_version: e.BASH_VERSION_LINE,
  fixture_dir: e.FIXTURE,
  environment: { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", HOME: "(the user'"'"'s home)",
                 USER: "(the test user)", LOGNAME: "(the test user)", LANG: "C" },
  netns: { main: ["br0", "br1"], virbr0: ["br0", "br1", "virbr0"] },
};
require("fs").writeFileSync(process.argv[1], JSON.stringify(meta));
' "$meta"
node "$tool" assemble "$cases" "$raw" "$out" "$meta"

ended=$(date +%s%N)
echo "make-expectations: $count cases in $(( (ended - started) / 1000000 )) ms" >&2
