#!/usr/bin/env bash
# A 2.1 GB Kineto trace, generated into a FIFO while `moesim replay` streams it: every kernel counted, peak
# memory under 1 GB (tests/cli/huge_trace.py). MOESIM_HUGE_TRACE_BYTES and MOESIM_HUGE_TRACE_MAX_RSS_MB
# scale it down for the sanitizer build, whose shadow memory and slowdown the bound does not allow for.
# Usage: bash huge_trace.sh MOESIM_BINARY SOURCE_DIR
set -eu
bin=${1:?usage: huge_trace.sh MOESIM_BINARY SOURCE_DIR}
src=${2:?usage: huge_trace.sh MOESIM_BINARY SOURCE_DIR}
exec python3 "$src/tests/cli/huge_trace.py" "$bin" "${MOESIM_HUGE_TRACE_BYTES:-2100000000}" "${MOESIM_HUGE_TRACE_MAX_RSS_MB:-1024}"
