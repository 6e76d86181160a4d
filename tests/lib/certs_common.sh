# certs_common.sh - helpers for the certs-tool black-box tests
# (test_certs_cli.sh, test_certs_faults.sh); source it after common.sh.
#
#   ct_snapshot DIR        every file under DIR (hidden ones too) with its
#                          hash, plus every entry's mode: two snapshots are
#                          equal only if nothing was written, renamed,
#                          created or left behind (a temporary file too)
#   ok DESC CMD...         CMD exits 0 with nothing on stderr (a sanitizer
#                          report would be there); its stdout in $OUT
#   ct_bad DIR DESC EXPECTED CMD...  CMD exits 1 (not a crash), with exactly
#                          one line on stderr, "certs-tool: ..." in printable
#                          ASCII and containing EXPECTED (in $ERR), and DIR
#                          byte-identical before and after
#   serial_of CRT          the certificate's serial, hex as openssl prints it

ct_snapshot() {
    [ -d "$1" ] || { echo "no $1"; return; }
    find "$1" -type f -exec sha256sum {} + | sort
    find "$1" -printf '%M %p\n' | sort
}

ok() {
    local desc=$1; shift
    "$@" >"$TEST_TMPDIR/ok.out" 2>"$TEST_TMPDIR/ok.err" ||
        fail "$desc: exit $? ($(head -c 600 "$TEST_TMPDIR/ok.err"))"
    [ ! -s "$TEST_TMPDIR/ok.err" ] || fail "$desc: wrote to stderr: $(head -c 600 "$TEST_TMPDIR/ok.err")"
    OUT=$(cat "$TEST_TMPDIR/ok.out")
}

ct_bad() {
    local dir=$1 desc=$2 want=$3 before after rc lines; shift 3
    before=$(ct_snapshot "$dir")
    "$@" >"$TEST_TMPDIR/bad.out" 2>"$TEST_TMPDIR/bad.err"; rc=$?
    after=$(ct_snapshot "$dir")
    ERR=$(cat "$TEST_TMPDIR/bad.err")
    [ $rc -ne 0 ] || fail "$desc: exit 0"
    [ $rc -eq 1 ] || fail "$desc: exit $rc (want 1; a crash or sanitizer?): $ERR"
    lines=$(wc -l <"$TEST_TMPDIR/bad.err")
    [ "$lines" -eq 1 ] || fail "$desc: $lines lines on stderr: $ERR"
    case "$ERR" in "certs-tool: "*) ;; *) fail "$desc: stderr is not 'certs-tool: ...': $ERR" ;; esac
    ! LC_ALL=C grep -q '[^ -~]' "$TEST_TMPDIR/bad.err" ||
        fail "$desc: raw bytes on stderr: $(od -c "$TEST_TMPDIR/bad.err" | head -5)"
    expect_contains "$ERR" "$want" "$desc"
    [ "$before" = "$after" ] || fail "$desc: $dir changed: $(diff <(echo "$before") <(echo "$after") | head -20)"
    pass "$desc -> $ERR"
}

serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }
