#!/usr/bin/env bash
# The addon under valgrind's memcheck, on the host (valgrind does not run inside the sandbox
# kernel): test/valgrind/addon-exercise.js drives every native call that needs no
# device-mapper (libdevmapper's queries and failing tasks, step jobs of file steps, loop
# devices, mount and umount, xattrs, mknod, readFiles, locks) for ROUNDS rounds. Fails on any
# memcheck error (invalid reads or writes, uninitialised values reaching a branch or a syscall,
# definite leaks), after the suppressions of test/valgrind/false-positives.supp. Needs root
# (loop devices, mount) and a built addon and dist/ (scripts/bootstrap.sh).
#   scripts/test-valgrind.sh [ROUNDS]   (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-10}
if ! command -v valgrind >/dev/null; then
  echo "valgrind: installing the Debian package"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q valgrind >/dev/null
fi
log=.cache/valgrind.log
scratch=.cache/valgrind-scratch
mkdir -p .cache
started=$SECONDS
status=0
valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
  --suppressions=test/valgrind/false-positives.supp --num-callers=40 --error-exitcode=99 --log-file="$log" \
  node test/valgrind/addon-exercise.js "$PWD/$scratch" "$rounds" || status=$?
summary=$(grep -E 'ERROR SUMMARY|definitely lost' "$log" | sed 's/^==[0-9]*== //' | tr '\n' ' ')
echo "valgrind: $rounds rounds in $((SECONDS - started)) s: $summary"
if [ "$status" != 0 ]; then
  echo "valgrind: FAILED (exit $status); the findings, from $log:"
  grep -v -E 'Warning: noted but unhandled ioctl|README_MISSING_SYSCALL|could cause spurious' "$log" | sed -n '1,200p'
  exit 1
fi
