#!/usr/bin/env bash
# Install the Debian packages PLM-EDC needs beyond Python, when they are missing.
#
# Idempotent: packages already installed are skipped, and nothing is done when all are there.
# As root it uses apt-get; otherwise sudo (non-interactive) when available; otherwise it prints
# the command to run and exits 0, so callers (`make run`, `.ci/run`) are never blocked by it.
#
#   scripts/install-system-deps.sh           install what is missing
#   scripts/install-system-deps.sh --check   only list what is missing (exit 0 either way)
set -euo pipefail

# The packages, one per line with why.
SYSTEM_PACKAGES=(
  fonts-noto-cjk  # Chinese glyphs in analytics plots (matplotlib) and rendered reports
  chromium        # the browser of the end-to-end journey (Playwright drives /usr/bin/chromium)
)

missing=()
for package in "${SYSTEM_PACKAGES[@]}"; do
  status="$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)"
  [[ "$status" == "install ok installed" ]] || missing+=("$package")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "system packages: all present (${SYSTEM_PACKAGES[*]})"
  exit 0
fi
echo "system packages missing: ${missing[*]}"
if [[ "${1:-}" == "--check" ]]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "no apt-get here: install the equivalent of '${missing[*]}' with your package manager" >&2
  exit 0
fi

if [[ "$(id -u)" -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "not root and no password-less sudo: run" >&2
  echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
if ! "${as_root[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; then
  # The package lists may be absent or stale (fresh containers ship none): refresh once.
  "${as_root[@]}" apt-get update -q
  "${as_root[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi

# New fonts: refresh fontconfig and drop matplotlib's font cache so the next process sees them.
if command -v fc-cache >/dev/null 2>&1; then
  fc-cache -f >/dev/null 2>&1 || true
fi
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${root}/.venv/bin/python"
if [[ -x "$python" ]]; then
  cache_dir="$("$python" -c 'import matplotlib; print(matplotlib.get_cachedir())' 2>/dev/null || true)"
  [[ -n "$cache_dir" ]] && rm -f "$cache_dir"/fontlist-v*.json
fi
echo "system packages installed: ${missing[*]}"
