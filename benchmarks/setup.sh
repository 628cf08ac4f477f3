#!/usr/bin/env bash
# Set up the speed benchmark's own environment, benchmarks/.venv-bench, apart from dpgkit's:
# Stable-Baselines3 is the benchmark's comparison point, never a dependency of dpgkit.
#
#     bash benchmarks/setup.sh
#     benchmarks/.venv-bench/bin/python benchmarks/speed.py
#
# Order matters: torch first (the pinned CPU wheel, found through the machine's pip config, so
# SB3's `torch>=...` requirement is already met and no CUDA build is pulled), then SB3, then
# dpgkit itself in editable mode (which also brings gymnasium[mujoco] at dpgkit's pins).
# Safe to re-run: an existing venv is reused and pip skips what is installed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv-bench"
python="${PYTHON:-python3.11}"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install --quiet)
"${pip[@]}" --upgrade pip
"${pip[@]}" "torch==2.13.0"
"${pip[@]}" "stable-baselines3==2.9.2"
"${pip[@]}" -e "$here/.."   # dpgkit, from the repo root (benchmarks/..)

"$venv/bin/python" - <<'EOF'
import dpgkit, gymnasium, stable_baselines3, torch
print(f"benchmark env ready: torch {torch.__version__}, stable-baselines3 "
      f"{stable_baselines3.__version__}, gymnasium {gymnasium.__version__}")
EOF
