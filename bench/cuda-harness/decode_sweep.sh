#!/usr/bin/env bash
# On the GPU machine: decode_test.cu built for several of decode.cu's shapes (16-byte loads a lane has in flight, 2-warp
# blocks of a linear product an SM holds), compiled in parallel, run one after another; prints the small products' timings.
# "build" or "run" as the argument does only that half (to build while something else has the GPU).
export PATH=$PATH:/usr/local/cuda/bin
configs=("8 16" "8 8" "12 8" "8 6" "12 6" "8 4" "16 4")
phase=${1:-all}
for cfg in "${configs[@]}"; do
  [ "$phase" = run ] && break
  set -- $cfg
  nvcc -arch=sm_90 -std=c++17 -DDECODE_LOADS=$1 -DDECODE_BLOCKS=$2 -o /tmp/dsweep-$1-$2 bench/cuda-harness/decode_test.cu 2>&1 | grep -i error &
done
wait
[ "$phase" = build ] && exit 0
for round in 1 2; do
  for cfg in "${configs[@]}"; do
    set -- $cfg
    echo "== round $round DECODE_LOADS=$1 DECODE_BLOCKS=$2"
    /tmp/dsweep-$1-$2 | grep -E "norm=.*pairs=.*us/call|relative error [0-9.e-]+ " | grep -v "^streamLinear"
  done
done
