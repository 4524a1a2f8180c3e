#!/usr/bin/env bash
# Build vLLM's CPU backend (VLLM_TARGET_DEVICE=cpu) from its PyPI source distribution into an
# environment of its own, on an x86-64 Linux machine that reaches only PyPI and Debian's archive.
# README.md here says what each step works around and how long it takes.
#
#   bash tests/vllm_cpu/build.sh [DIR]       # DIR: default build/vllm-cpu (sources, build, venv)
#
# Environment: VLLM_VERSION (0.33.0), PYTHON (python3.11), MAX_JOBS (2), TORCH_SPEC (torch==2.13.0:
# the CPU build of torch where pip finds one), ONEDNN_SRC (a oneDNN source tree; default: Debian's
# onednn source package, 3.7.2), VLLM_CPU_EXTS (_C_AVX512; _C,_C_AVX512,_C_AVX2 is vLLM's own set).
set -euo pipefail
VLLM_VERSION=${VLLM_VERSION:-0.33.0}
PYTHON=${PYTHON:-python3.11}
export MAX_JOBS=${MAX_JOBS:-2}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
export VLLM_CPU_EXTS=${VLLM_CPU_EXTS:-_C_AVX512}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
DIR=$(mkdir -p "${1:-build/vllm-cpu}" && cd "${1:-build/vllm-cpu}" && pwd)
VENV=$DIR/venv
SRC=$DIR/vllm-$VLLM_VERSION
cd "$DIR"
step() { echo; echo "== $(date -u +%H:%M:%S) $*"; }

step "1. a venv with the CPU build of torch and vLLM's build requirements"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
# shellcheck disable=SC1091
. "$VENV/bin/activate"
pip install -q --upgrade pip
pip install -q "$TORCH_SPEC" "cmake>=3.26.1" ninja "packaging>=24.2" "setuptools==78.1.1" "setuptools-scm>=8" \
    "setuptools-rust>=1.9.0" wheel jinja2 regex
TORCH=$(python -c "import torch; print(torch.__version__)")
echo "torch $TORCH (vLLM $VLLM_VERSION pins torch==2.14.0+cpu)"

step "2. vLLM's sdist from the package index"
# pip cannot fetch it for us: with VLLM_TARGET_DEVICE=cpu its metadata names triton-cpu by a direct
# URL, which pip refuses in a distribution from an index ("cannot declare direct URL dependencies")
if [ ! -d "$SRC" ]; then
    python - "$VLLM_VERSION" <<'EOF'
import re, sys, urllib.request
from pip._internal.models.index import PyPI
version = sys.argv[1]
page = urllib.request.urlopen(f"{PyPI.simple_url}/vllm/").read().decode()
url = next(u for u in re.findall(r'href="([^"]+)"', page) if f"/vllm-{version}.tar.gz" in u)
urllib.request.urlretrieve(url.split("#")[0], f"vllm-{version}.tar.gz")
EOF
    tar xzf "vllm-$VLLM_VERSION.tar.gz"
fi

step "3. oneDNN's source (vLLM's CMake would clone it from its repository: v3.13)"
if [ -z "${ONEDNN_SRC:-}" ]; then
    # Debian's source package, fetched with apt from the machine's own Debian mirror; only trixie's
    # 3.7.2 orig tarball is on the mirror (sid lists 3.12.1 but its tarball is missing there)
    mkdir -p apt/lists/partial apt/cache/archives/partial apt/dl
    uri=$(grep -h -E '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | grep -m1 -o -E 'http[^ ]*debian/?' )
    echo "deb-src $uri trixie main" > apt/sources.list
    APT=(-o Dir::Etc::SourceList="$DIR/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
         -o Dir::State::Lists="$DIR/apt/lists" -o Dir::Cache="$DIR/apt/cache")
    apt-get "${APT[@]}" update -qq
    (cd apt/dl && apt-get "${APT[@]}" source --download-only onednn=3.7.2+ds-2)
    [ -d oneDNN-3.7.2 ] || tar xJf apt/dl/onednn_3.7.2+ds.orig.tar.xz
    ONEDNN_SRC=$DIR/oneDNN-3.7.2
fi
export FETCHCONTENT_SOURCE_DIR_ONEDNN=$ONEDNN_SRC FETCHCONTENT_FULLY_DISCONNECTED=ON

step "4. local changes to the sdist (none upstream)"
cd "$SRC"
# a) the x86 backend asks for g++ >= 12.3; Debian 12 has 12.2.0 (it compiles)
sed -i 's/CMAKE_CXX_COMPILER_VERSION VERSION_GREATER_EQUAL 12.3))/CMAKE_CXX_COMPILER_VERSION VERSION_GREATER_EQUAL 12.2))/' cmake/cpu_extension.cmake
python - <<'EOF'
from pathlib import Path
# b) build only the extension variants in VLLM_CPU_EXTS (x86 builds three: _C with AMX and AVX512-BF16
#    and the sgl kernels, _C_AVX512, _C_AVX2), so two cores build one
p = Path("setup.py"); s = p.read_text()
old = '''        ext_modules.append(CMakeExtension(name="vllm._C"))
        ext_modules.append(CMakeExtension(name="vllm._C_AVX512"))
        ext_modules.append(CMakeExtension(name="vllm._C_AVX2"))
'''
new = '''        for _name in os.getenv("VLLM_CPU_EXTS", "_C,_C_AVX512,_C_AVX2").split(","):
            ext_modules.append(CMakeExtension(name="vllm." + _name))
'''
if old in s:
    p.write_text(s.replace(old, new))
# c) where vllm._C is not built, an AVX512-BF16 CPU loads _C_AVX512 (vLLM loads only _C there)
p = Path("vllm/platforms/cpu.py"); s = p.read_text()
old = '''                    try:
                        import vllm._C  # noqa: F401
                    except ImportError as e:
                        logger.warning_once(
                            "Failed to import from vllm._C: %s", repr(e)
                        )
'''
new = '''                    try:
                        import vllm._C  # noqa: F401
                    except ImportError as e:
                        try:
                            import vllm._C_AVX512  # noqa: F401
                        except ImportError as e2:
                            if ignored_msg not in e2.msg:
                                logger.warning_once(
                                    "Failed to import from vllm._C: %s", repr(e)
                                )
'''
if old in s:
    p.write_text(s.replace(old, new))
EOF

step "5. compile (oneDNN: matmul and reorder only, no GEMM kernels, -O1; vLLM: -O2 without -g)"
export VLLM_TARGET_DEVICE=cpu SETUPTOOLS_SCM_PRETEND_VERSION=$VLLM_VERSION CMAKE_BUILD_TYPE=RelWithDebInfo
export CMAKE_ARGS="-DONEDNN_ENABLE_PRIMITIVE_CPU_ISA=AVX512_CORE_BF16 -DONEDNN_ENABLE_PRIMITIVE_GPU_ISA=NONE -DONEDNN_ENABLE_GEMM_KERNELS_ISA=NONE -DCMAKE_CXX_FLAGS=-DNDEBUG -DCMAKE_CXX_FLAGS_RELEASE=-O1 -DCMAKE_C_FLAGS_RELEASE=-O1 -DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2"
# the Rust frontend (vllm-rs) is optional and needs crates from crates.io: keep cargo out of sight
PATH=$(echo "$PATH" | tr ':' '\n' | grep -v cargo | paste -sd:) nice -n 19 pip install --no-build-isolation --no-deps -v .

step "6. vLLM's runtime requirements (not torch: the constraint keeps the one above) and gapbench's"
echo "torch==$TORCH" > "$DIR/constraints.txt"
pip install -q -c "$DIR/constraints.txt" -r requirements/common.txt "numba==0.65.0" -e "$REPO[test]"
python -c "import vllm, vllm.platforms as p; print('vllm', vllm.__version__, p.current_platform.device_type)"
step "done: $VENV"
