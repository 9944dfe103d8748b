#!/usr/bin/env bash
# One call on the GPU machine: correctness (cuda-check), the four benchmarks, and the HF + PEFT anchors on the same GPU.
# Run from the repository root there, after bench/prepare-gpu-carry.sh here; results go to $OUT.
set -uo pipefail
bash .carry/unpack.sh
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 SHARPTUNE_CACHE=/tmp/st/cache
B=.carry/bin/SharpTune.Bench
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee $OUT/gpu.txt
for step in "$@"; do
  case $step in
    check) $B cuda-check /tmp/st/testdata 2>&1 | tee $OUT/check.txt ;;
    train) $B cuda-train 7b 3 2>&1 | tee -a $OUT/train.txt; $B cuda-train 0.5b 5 2>&1 | tee -a $OUT/train.txt ;;
    profile) SHARPTUNE_CUDA_PROFILE=1 $B cuda-train 7b 1 2>&1 | tee -a $OUT/profile.txt ;;
    decode) $B cuda-decode 7b 64 2>&1 | tee -a $OUT/decode.txt; $B cuda-decode 0.5b 256 2>&1 | tee -a $OUT/decode.txt ;;
    kernels) $B cuda-decode-kernels 7b 2>&1 | tee -a $OUT/kernels.txt ;;
    train7) $B cuda-train 7b 3 2>&1 | tee -a $OUT/train.txt ;;
    hf) for a in "train 7b" "train 0.5b" "decode 7b" "decode 0.5b"; do
          PYTHONUNBUFFERED=1 python3 bench/anchors/hf_peft.py $a 2>&1 | grep -v Warning | tail -3 | tee -a $OUT/hf.txt; done ;;
  esac
done
