# Sourced by scripts/gpu-bundle.sh and scripts/gpu-run.sh: a file too big for one device call (64 MiB carried in,
# 16 MiB per file back) travels as FILE.partKofN, which gpu-run.sh joins on the other side once all N have arrived.
#
#   split_parts FILE MAX_BYTES DEST    writes DEST.part1ofN … DEST.partNofN (N ≤ 10, each ≤ MAX_BYTES) and prints N
split_parts() {
  local file=$1 max=$2 dest=$3 size n k
  size=$(stat -c %s "$file")
  n=$(((size + max - 1) / max))
  ((n >= 1)) || n=1
  split -n "$n" -d -a 1 "$file" "$dest.tmp."
  for ((k = 0; k < n; k++)); do mv "$dest.tmp.$k" "$dest.part$((k + 1))of$n"; done
  echo "$n"
}
