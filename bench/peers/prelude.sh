# Sourced by bench/peers/run.sh and bench/peers/inference.sh: strict mode, the repository root as
# working folder, a release build of spio in $SPIO, and a scratch file $tmp removed on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
swift build -c release --product spio >/dev/null
SPIO=.build/release/spio
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
