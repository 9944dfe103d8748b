#!/usr/bin/env bash
# On the GPU machine: decode_test.cu built for several shapes of gemv.cu's streaming (warps a block, ring stages,
# weights a piece), each printing its correctness lines and the 7B-shape timings beside decode.cu's kernel.
export PATH=$PATH:/usr/local/cuda/bin
for cfg in "8 4 2048" "8 8 1024" "16 4 1024" "16 2 2048" "12 4 1024" "16 3 1024"; do
  set -- $cfg
  echo "== STREAM_WARPS=$1 STREAM_STAGES=$2 STREAM_PIECE=$3"
  nvcc -arch=sm_90 -std=c++17 -DSTREAM_WARPS=$1 -DSTREAM_STAGES=$2 -DSTREAM_PIECE=$3 -o /tmp/sweep bench/cuda-harness/decode_test.cu && /tmp/sweep | grep -v "^linearBF16x1 norm"
done
