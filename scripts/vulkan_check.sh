#!/usr/bin/env bash
# Prove GPU offload on a real GGML GPU backend without a GPU: llama.cpp's Vulkan
# backend on Mesa's llvmpipe device (a Vulkan 1.3 implementation that runs on the
# CPU). Recipe and measured bounds: docs/gpu-and-hub.md. Debian/Ubuntu, run as root
# (it apt-installs the Vulkan tool chain).
#
#   scripts/vulkan_check.sh              build once (cached), then check
#   scripts/vulkan_check.sh --build-only just build the cached wheel
#   scripts/vulkan_check.sh --venv-only  build, set up the venv and check that it imports what the check needs
#
# Everything it makes lives under $W2S_VK_WORK (default ~/.cache/w2s-gguf-vulkan),
# never in the repository: unpacked headers, the wheel (about 78 MB; building it
# takes ~17 min on 2 cores), and a venv that shadows the CPU llama_cpp.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${W2S_VK_WORK:-${XDG_CACHE_HOME:-$HOME/.cache}/w2s-gguf-vulkan}
VERSION=${LLAMA_CPP_VERSION:-0.3.36}
PY=${PYTHON:-python3}
mkdir -p "$WORK"
log() { echo "[vulkan_check] $*" >&2; }

# 1. Tool chain. Debian 12's own Vulkan headers (1.3.239) are too old for the
#    vendored llama.cpp (vk::LayerSettingEXT missing); its libvulkan-dev still
#    provides the libvulkan.so link the build needs.
PKGS="glslc glslang-tools spirv-headers mesa-vulkan-drivers libvulkan1 libvulkan-dev"
if ! dpkg -s $PKGS >/dev/null 2>&1; then
  log "installing $PKGS"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $PKGS >/dev/null
fi

# 2. Newer headers: Debian 13's libvulkan-dev, downloaded through a private apt
#    state (the system's sources are not touched; its mirror is reused) and unpacked, not installed.
HEADERS="$WORK/vulkan-headers"
if [ ! -f "$HEADERS/usr/include/vulkan/vulkan.hpp" ]; then
  log "fetching Debian 13 Vulkan headers"
  APT="$WORK/apt"
  mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/debs"
  # The same mirror the machine's own apt uses for its main suite, asked for the next suite instead.
  CODENAME=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  MIRROR=${W2S_VK_MIRROR:-$(apt-cache policy | awk -v s="$CODENAME/main" '$3 == s && $2 ~ /^[a-z]+:\/\// {print $2; exit}')}
  [ -n "$MIRROR" ] || { log "no apt source for '$CODENAME/main' in apt-cache policy; set W2S_VK_MIRROR to a Debian mirror URI"; exit 2; }
  echo "deb $MIRROR trixie main" > "$APT/sources.list"
  APT_OPTS=(-o Dir::Etc::SourceList="$APT/sources.list" -o Dir::Etc::SourceParts=/dev/null
            -o Dir::State::Lists="$APT/lists" -o Dir::Cache="$APT/cache" -o APT::Default-Release=trixie -o APT::Sandbox::User=root)
  apt-get "${APT_OPTS[@]}" update -qq
  (cd "$APT/debs" && apt-get "${APT_OPTS[@]}" download libvulkan-dev/trixie)
  rm -rf "$HEADERS" && dpkg -x "$APT"/debs/libvulkan-dev_*.deb "$HEADERS"
fi

# 3. The wheel, built once with the Vulkan backend.
WHEELS="$WORK/wheels"
if ! ls "$WHEELS"/llama_cpp_python-"$VERSION"-*.whl >/dev/null 2>&1; then
  log "building llama-cpp-python $VERSION with -DGGML_VULKAN=on (about 17 min on 2 cores)"
  mkdir -p "$WHEELS"
  CMAKE_ARGS="-DGGML_VULKAN=on -DVulkan_INCLUDE_DIR=$HEADERS/usr/include" \
    nice -n 19 "$PY" -m pip wheel --no-cache-dir --no-deps --no-binary llama-cpp-python \
    -w "$WHEELS" "llama-cpp-python==$VERSION"
fi
[ "${1:-}" = "--build-only" ] && { log "wheel ready in $WHEELS"; exit 0; }

# 4. A venv with its own llama_cpp that sees every other package of the interpreter that runs this
#    script (numpy, torch, llama-cpp-python's own dependencies, ...). --system-site-packages alone shows
#    only the base interpreter's packages: run from a virtualenv, it would miss the virtualenv's. So a .pth
#    file adds $PY's own site folders after the venv's (their .pth files too: editable installs).
#    --ignore-installed: pip would otherwise take the system's CPU build as already installed.
VENV="$WORK/venv"
[ -x "$VENV/bin/python" ] || "$PY" -m venv --system-site-packages "$VENV"
"$PY" - "$VENV/bin/python" <<'EOF'
import subprocess, sys, sysconfig
folders = list(dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]))
venv_site = subprocess.run([sys.argv[1], "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                           check=True, capture_output=True, text=True).stdout.strip()
with open(f"{venv_site}/w2s-invoking-python.pth", "w") as pth:
    pth.write("".join(f"import site; site.addsitedir({f!r})\n" for f in folders if f != venv_site))
EOF
if ! "$VENV/bin/python" -c 'import llama_cpp, sys; sys.exit(not llama_cpp.__file__.startswith(sys.prefix))' 2>/dev/null; then
  "$VENV/bin/python" -m pip install -q --no-deps --ignore-installed "$WHEELS"/llama_cpp_python-"$VERSION"-*.whl
fi

export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
# Before the long check: the venv takes llama_cpp from its own site folder and everything else (the
# project's dependencies, llama-cpp-python's) from the interpreter that runs this script.
if ! "$VENV/bin/python" - "$VENV" <<'EOF'
import sys
import llama_cpp
assert llama_cpp.__file__.startswith(sys.argv[1]), f"llama_cpp comes from {llama_cpp.__file__}, not the venv"
import w2s_gguf.features.pipeline, w2s_gguf.tools.doctor, w2s_gguf.tasks  # noqa: F401
EOF
then
  log "the venv $VENV cannot import what the check needs (above); delete it and rerun"; exit 2
fi
[ "${1:-}" = "--venv-only" ] && { log "venv ready: $VENV"; exit 0; }

# 5. The check: CPU features from the normal build, then the Vulkan build against them.
OUT="$WORK/check"
mkdir -p "$OUT"
log "CPU reference features ($("$PY" -c 'import llama_cpp; print(llama_cpp.__file__)'))"
"$PY" "$REPO/scripts/vulkan_check.py" cpu --out "$OUT"
log "Vulkan build ($("$VENV/bin/python" -c 'import llama_cpp; print(llama_cpp.__file__)'))"
# -X faulthandler: a crash inside llama.cpp or the Vulkan driver prints the Python stack that reached it.
GGML_VK_VISIBLE_DEVICES=${GGML_VK_VISIBLE_DEVICES:-0} "$VENV/bin/python" -X faulthandler "$REPO/scripts/vulkan_check.py" gpu --out "$OUT"
