#!/usr/bin/env bash
# Fine-tunes the bundled stories260K with LoRA on self-cognition (examples/stories-self-cognition.yaml),
# then asks the tuned model who it is and lets it tell a story.
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build src/SharpTune.Cli -c Release -v quiet -nologo
sharptune() { dotnet src/SharpTune.Cli/bin/Release/net10.0/sharptune.dll "$@"; }
sharptune sft --config examples/stories-self-cognition.yaml | tee /tmp/sharptune-main-job.log
checkpoint=$(sed -n 's/^last_model_checkpoint: //p' /tmp/sharptune-main-job.log)
for query in "Who are you?" "Who made you?" "Once upon a time, there was a little"; do
  echo "<<< $query"
  printf '>>> '
  sharptune infer --model models/stories260K --adapters "$checkpoint" --query "$query" --max_new_tokens 32 --temperature 0
done
