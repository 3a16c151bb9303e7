set -x
R=/tmp/cib/queue/zresume
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH CIB_CACHE=/tmp/cib/cache CIB_PYTHON=$(command -v python3) PYTHONUNBUFFERED=1 TORCHINDUCTOR_CACHE_DIR=/tmp/cib/inductor-cache BIN=/tmp/cib/bin MODELS=/tmp/cib/models
export CIB_TORCH_LIB=$("$CIB_PYTHON" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export CIB_GIT_COMMIT=$(cat /tmp/cib/bin/COMMIT)
echo "=== stage resume ($(date -u +%T))"
d=$(ls -d /tmp/cib/out/libtorch/libtorch/results/*llama-3-8b*/ 2>/dev/null | tail -n1)
if [ -n "$d" ]; then
  lim=$((1796199765 - $(date +%s)))
  timeout --signal=INT --kill-after=30 ${lim}s /tmp/cib/bin/runner bench --bin-dir /tmp/cib/bin --resume "$d" 2>&1 | tail -n 80
else
  cd /tmp/cib/queue/075641/tree && OUT=/tmp/cib/out/libtorch SHAPE=llama-3-8b LIBTORCH_VARIANTS="graph graph-block compiled compiled-block eager" LIBTORCH_LAUNCHES=2 LIBTORCH_ITERS=3 END_AT=1796199765 bash scripts/gpu/libtorch.sh tiny
fi
tar -czf $R/libtorch-final.tar.gz -C /tmp/cib/out libtorch
echo "=== done ($(date -u +%T))"
