#!/usr/bin/env bash
# The end of `make test`: which tests skipped and why, the one command that runs them too, and
# the plain closing count. Usage: scripts/test-summary.sh LOG (the output of swift test).
set -uo pipefail
log="$1"
passed=$(grep -cE "^Test Case '.*' passed \(" "$log")
failed=$(grep -cE "^Test Case '.*' failed \(" "$log")
skipped=$(grep -cE "^Test Case '.*' skipped \(" "$log")
if [ "$skipped" -gt 0 ]; then
  echo
  echo "skipped ($skipped), each with what it needs:"
  grep -E ": Test skipped - " "$log" | sed -E 's/^.*: ([A-Za-z0-9_]+\.[A-Za-z0-9_]+) : Test skipped - (.*)$/  \1: \2/'
  echo "make test-all runs these too: it installs the PyPI packages in .venv and starts a local one-node Slurm (scripts/test-deps.sh), as CI does."
fi
echo "$passed passed, $failed failed, $skipped skipped"
