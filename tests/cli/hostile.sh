#!/usr/bin/env bash
# Hostile inputs through the real binary: each ends in exit status 2 with one line on stderr naming the
# file (or flag) and the field, or in a correct result; and a sweep of 10^12 points streams its lines
# in bounded memory, having said its point count up front.
# Usage: bash hostile.sh MOESIM_BINARY SOURCE_DIR
set -u
bin=${1:?usage: hostile.sh MOESIM_BINARY SOURCE_DIR}
src=${2:?usage: hostile.sh MOESIM_BINARY SOURCE_DIR}
data="$src/tests/data"
source "$src/tests/cli.bash"

layout="$data/layout-valid.json"
model="$data/model-valid.json"
run=(simulate --model "$model" --hw h100-sxm)

# Deeply nested JSON (10^6 arrays) as a field's value: the message would print it, a copy would recurse.
python3 -c "import sys; sys.stdout.write('{\"devices\": ' + '['*1000000 + ']'*1000000 + '}')" > "$tmp/deep.json"
expect_error "10^6 nested arrays" "deep.json" "nested deeper" -- "${run[@]}" --layout "$tmp/deep.json"
# Endless input: read up to the size limit, then refused.
expect_error "/dev/zero as a model" "/dev/zero" "larger than" -- simulate --model /dev/zero --hw h100-sxm --layout "$layout"
# Numbers JSON cannot hold, or int fields cannot.
sed 's/"hidden": 1024/"hidden": 1e999/' "$model" > "$tmp/inf.json"
expect_error "hidden 1e999" "inf.json" "hidden" -- "${run[@]/$model/$tmp/inf.json}" --layout "$layout"
sed 's/"layers": 4/"layers": 1e15/' "$model" > "$tmp/huge.json"
expect_error "10^15 layers" "huge.json" "layers" -- "${run[@]/$model/$tmp/huge.json}" --layout "$layout"
# Encodings: UTF-16 with BOM, invalid UTF-8, binary garbage, truncated.
{ printf '\xff\xfe'; iconv -f UTF-8 -t UTF-16LE "$model"; } > "$tmp/utf16.json"
expect_error "UTF-16 model" "utf16.json" "invalid JSON" -- "${run[@]/$model/$tmp/utf16.json}" --layout "$layout"
sed 's/tiny-moe/tiny\xc3\x28\xff/' "$model" > "$tmp/bad-utf8.json"
expect_error "invalid UTF-8" "bad-utf8.json" "invalid JSON" -- "${run[@]/$model/$tmp/bad-utf8.json}" --layout "$layout"
head -c 3000 /dev/urandom > "$tmp/garbage.json"
expect_error "binary garbage" "garbage.json" "invalid JSON" -- "${run[@]/$model/$tmp/garbage.json}" --layout "$layout"
head -c 200 "$model" > "$tmp/cut.json"
expect_error "truncated model" "cut.json" "invalid JSON" -- "${run[@]/$model/$tmp/cut.json}" --layout "$layout"
# Layouts: sizes whose product overflows 64 bits, a batch too large to simulate, invalid UTF-8 in a flag.
expect_error "tp*cp*pp beyond 64 bits" "command line" "tp*cp*pp" -- \
  "${run[@]}" --devices 2000000000 --tp 2000000000 --cp 2000000000 --pp 2000000000 --global-batch 8
expect_error "2e9 microbatches" "command line" "pipeline passes" -- \
  simulate --model mixtral-8x7b --hw h100-sxm --devices 1 --global-batch 2000000000
expect_error "invalid UTF-8 flag" "with command-line flags" "precision" -- "${run[@]}" --layout "$layout" --precision $'fp\xff'
# A million devices simulate normally.
if "$bin" simulate --model deepseek-v3-671b --hw h800 --devices 1048576 --pp 16 --ep 64 --global-batch 65536 \
    --seq-len 4096 > "$tmp/out" 2> "$tmp/err"; then
  grep -q "MFU" "$tmp/out" && echo "ok   [10^6 devices]: $(grep -m1 MFU "$tmp/out")" || fail "10^6 devices" "no MFU line"
else
  fail "10^6 devices" "$(head -c 400 "$tmp/err")"
fi

# A sweep space of 10^12 points: the count is printed first, lines stream out, memory stays bounded.
cat > "$tmp/huge-sweep.json" <<'JSON'
{"base_model": "mixtral-8x7b", "hardware": "h100-sxm", "devices": 32, "seq_len": 2048, "global_batch_tokens": 131072,
 "model_axes": {"layers": {"from": 1, "to": 10000}, "hidden": {"from": 64, "to": 640000, "step": 64},
                "experts": {"from": 1, "to": 10000}},
 "layout": "auto", "constraints": {"total_params": {"max": 40e9}}}
JSON
"$bin" sweep "$tmp/huge-sweep.json" --jobs 1 --out "$tmp/huge.jsonl" > "$tmp/huge.out" 2> "$tmp/huge.err" &
pid=$!
sleep 3
rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2> /dev/null || echo 0)
kill -9 "$pid" 2> /dev/null
wait "$pid" 2> /dev/null
lines=$(wc -l < "$tmp/huge.jsonl")
if ! grep -q "1000000000000 model points" "$tmp/huge.out"; then
  fail "10^12-point sweep" "no point count printed: $(head -c 300 "$tmp/huge.out") $(head -c 300 "$tmp/huge.err")"
elif [ "$lines" -lt 100 ]; then
  fail "10^12-point sweep" "only $lines lines streamed in 3 s"
elif [ "$rss_kb" -eq 0 ] || [ "$rss_kb" -gt 1048576 ]; then
  fail "10^12-point sweep" "peak resident memory ${rss_kb} kB (expected under 1 GiB)"
else
  echo "ok   [10^12-point sweep]: count printed, $lines lines streamed in 3 s, peak RSS $((rss_kb / 1024)) MiB"
fi

finish "hostile cases"
