#!/usr/bin/env bash
# Installs the system packages vmlet's build and tests need (Debian/Ubuntu, as root or
# with sudo). Safe to re-run: it installs only what is missing.
set -euo pipefail

PACKAGES=(gcc make python3 g++ binutils)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "[vmlet deps] system packages present: ${PACKAGES[*]}"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "[vmlet deps] installing: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
