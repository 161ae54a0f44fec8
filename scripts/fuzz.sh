#!/usr/bin/env bash
# Fuzzes the parsers of hostile input — the agents' transcripts and a repository's
# .handoff.toml — for SECONDS per target (default 60), with libFuzzer through
# cargo-fuzz on the nightly toolchain (both installed here when missing).
#
#   scripts/fuzz.sh [SECONDS [TARGET...]]
#
# TARGET is claude_transcript, codex_transcript or config; all three by default.
#
# The targets build once into fuzz/target, which is kept, so a run after one that
# built them starts fuzzing at once. New inputs that reach new code go to
# fuzz/corpus-grown/<target> (kept, not committed); the committed seeds in
# fuzz/corpus/<target> are only read. Any crash, timeout or memory blow-up fails the
# run, naming the input (under fuzz/artifacts/<target>) and how to replay it.
# See docs/fuzzing.md.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m[fuzz]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[fuzz] FAILED:\033[0m %s\n' "$*" >&2; exit 1; }

usage="usage: scripts/fuzz.sh [SECONDS [TARGET...]]"
seconds="${1:-60}"
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || die "$usage; SECONDS is a whole number above 0"
all=(claude_transcript codex_transcript config)
targets=("${@:2}")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
for target in "${targets[@]}"; do
  [[ " ${all[*]} " == *" $target "* ]] || die "$usage; no target \`$target\` (there are ${all[*]})"
done
# The same flags for build and run, or `cargo fuzz run` builds again. No sanitizer:
# the code under test is safe Rust, where what can go wrong is a panic, which
# libFuzzer catches without one, and the targets run faster without it.
build=(--sanitizer none)
# Inputs up to 64 KiB (a long transcript line, a large config file); one input may
# take 10 s and the process 1 GiB before it counts as a failure.
limits=(-max_len=65536 -timeout=10 -rss_limit_mb=1024)

command -v rustup >/dev/null || die "rustup is missing; install it from https://rustup.rs"
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  log "installing the nightly toolchain (libFuzzer's instrumentation needs it)"
  rustup toolchain install nightly --profile minimal || die "rustup toolchain install nightly failed"
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz"
  cargo install cargo-fuzz --locked || die "cargo install cargo-fuzz --locked failed"
fi
# The fuzz project has its own target folder; one set for the main workspace would
# mix instrumented and plain builds of the same crates.
unset CARGO_TARGET_DIR

started=$SECONDS
log "building the fuzz targets (into fuzz/target)"
cargo +nightly fuzz build "${build[@]}" || die "the fuzz targets do not build"
log "built in $((SECONDS - started)) s"

mkdir -p fuzz/logs
failed=()
for target in "${targets[@]}"; do
  grown="fuzz/corpus-grown/$target"
  logfile="fuzz/logs/$target.log"
  mkdir -p "$grown" "fuzz/artifacts/$target"
  stamp="$(mktemp)"
  log "$target: fuzzing for $seconds s"
  # The first corpus folder is the one libFuzzer adds new inputs to.
  if cargo +nightly fuzz run "${build[@]}" "$target" "$grown" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" "${limits[@]}" -dict="fuzz/dict/$target.dict" \
    -print_final_stats=1 >"$logfile" 2>&1; then
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$logfile")"
    added="$(sed -n 's/^stat::new_units_added: *//p' "$logfile")"
    cov="$(grep -o 'cov: [0-9]*' "$logfile" | tail -n 1)"
    log "$target: ok, ${runs:-?} inputs, ${cov:-cov: ?}, ${added:-?} new in $grown"
  else
    printf '\033[1;31m[fuzz] %s FAILED\033[0m; from %s:\n' "$target" "$logfile" >&2
    # The panic with its message, then libFuzzer's verdict; the backtrace is in the log.
    sed -n '/panicked at/,/^stack backtrace/p' "$logfile" | head -n 40 >&2
    grep -v '^#[0-9]' "$logfile" | tail -n 15 >&2
    found=0
    while IFS= read -r input; do
      found=1
      printf '\033[1;31m[fuzz] crashing input:\033[0m %s\n' "$input" >&2
      printf '  replay: cargo +nightly fuzz run %s %s %s\n' "${build[*]}" "$target" "$input" >&2
    done < <(find "fuzz/artifacts/$target" -type f -newer "$stamp")
    [ "$found" = 1 ] || printf '[fuzz] no input was saved; the log above says why\n' >&2
    failed+=("$target")
  fi
  rm -f "$stamp"
  # Keep what grew small: replace it with the fewest inputs that reach the same code,
  # so that loading it never eats the time of the next run.
  if [ "$(find "$grown" -type f | wc -l)" -gt 10000 ]; then
    log "$target: minimizing $grown"
    cargo +nightly fuzz cmin "${build[@]}" "$target" "$grown" -- "${limits[@]}" >>"$logfile" 2>&1 \
      || die "$target: cargo fuzz cmin failed; see $logfile"
  fi
done

log "done in $((SECONDS - started)) s"
[ ${#failed[@]} -eq 0 ] || die "${failed[*]}: see the inputs above; docs/fuzzing.md says what to do"
