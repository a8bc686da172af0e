#!/usr/bin/env bash
# One real capture under valgrind memcheck: no memory errors and no definite
# or indirect leaks (issue 7). Guards every free on the run path (vm, rsp,
# target, kernel/DWARF, capture, report): remove one and valgrind's
# --error-exitcode turns the leak into exit status 99 here. No suppression
# file is needed: libdwarf/libelf/capstone/expat ran clean when this was
# written (0 errors, "All heap blocks were freed").
. "$(dirname "$0")/lib.sh"
command -v valgrind >/dev/null || { echo "FAIL: valgrind is not installed (scripts/install-deps.sh)" >&2; fails=1; finish; exit 1; }
supp=()
[ -f "$(dirname "$0")/../valgrind.supp" ] && supp=(--suppressions="$(dirname "$0")/../valgrind.supp")
j=$work/vg.json log=$work/vg.log
start=$(date +%s)
rc=0
timeout -k 10 400 valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
  --show-leak-kinds=definite,indirect "${supp[@]}" --log-file="$log" \
  "$FAULTLINE_BIN" run --scenario write --timeout 120 --format json -o "$j" 2>"$work/err" || rc=$?
echo "valgrind run: exit $rc in $(( $(date +%s) - start )) s"
expect "exit status under valgrind (99: valgrind found errors or leaks)" "$rc" 0
expect_true "valgrind really ran (memcheck log)" grep -q 'Memcheck' "$log"
expect "valgrind's error summary" "$(grep -o 'ERROR SUMMARY: [0-9]* errors' "$log" | tail -1)" "ERROR SUMMARY: 0 errors"
expect_true "no 'definitely lost' bytes" bash -c "! grep -E 'definitely lost: [1-9]' '$log'"
expect_true "no 'indirectly lost' bytes" bash -c "! grep -E 'indirectly lost: [1-9]' '$log'"
expect "the capture itself succeeded (summary without error)" "$(jq -r 'select(.type=="summary") | .error' "$j" 2>/dev/null)" null
expect "every check held under valgrind" "$(jq -s '[.[] | select(.type=="check" and .ok==false)] | length' "$j" 2>/dev/null)" 0
if [ "$fails" -ne 0 ]; then
  echo "--- valgrind log (errors and leaks) ---"; grep -E '^==[0-9]+== ' "$log" | grep -vE 'Copyright|Using Valgrind|Command:' | head -80
  echo "--- stderr ---"; cat "$work/err"
fi
finish
