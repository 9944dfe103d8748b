#!/usr/bin/env bash
# Fills the git-ignored .carry/ for a run on the GPU machine (which has no .NET): the benchmark program published
# self-contained, the HF anchor script, and the fixtures cuda-check reads (tokenizer files compressed to fit the 64 MiB
# a call may carry). On the device: bash .carry/unpack.sh, then .carry/bin/SharpTune.Bench <name> ...
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .carry && mkdir -p .carry
dotnet publish bench/SharpTune.Bench -c Release -r linux-x64 --self-contained -p:PublishTrimmed=true -p:PublishSingleFile=true \
  -p:EnableCompressionInSingleFile=true -o .carry/bin >/dev/null
rm -f .carry/bin/*.pdb
tar -czf .carry/testdata.tar.gz -C ../shared testdata/models
cat > .carry/unpack.sh <<'INNER'
set -e
mkdir -p /tmp/st && tar -xzf .carry/testdata.tar.gz -C /tmp/st
echo "testdata in /tmp/st/testdata"
INNER
du -sh .carry/*
