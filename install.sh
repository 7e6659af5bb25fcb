#!/usr/bin/env bash
# Installs everything keras_cnns needs on a fresh Debian/Ubuntu machine:
# the pinned Python packages (tensorflow[and-cuda] on Linux x86-64: the GPU when there is one, else the CPU),
# keras_cnns itself in editable mode (its console scripts: keras-cnns-classify, ...) and Debian's Fashion-MNIST
# package (the built-in default dataset).
set -euo pipefail
cd "$(dirname "$0")"
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  if command -v apt-get >/dev/null; then
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null \
      || echo "install.sh: could not install dataset-fashion-mnist; keras_cnns will fall back to keras.datasets" >&2
  fi
fi
python3 -m pip install -q -r requirements.txt
python3 -m pip install -q --no-deps -e .
