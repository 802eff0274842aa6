#!/usr/bin/env bash
# Installs the system packages vmlet's build and tests need (Debian/Ubuntu, as root or
# with sudo). Safe to re-run: it installs only what is missing.
set -euo pipefail

# gcc make python3 g++ binutils: build the guest and native parts.
# skopeo umoci docker-registry: OCI image-layout snapshot tests (copy/gc/push-pull).
# gdb: the core-dump tests load vmlet's guest core dumps in real gdb.
# Note: on systemd hosts the docker-registry package enables a system service on :5000;
# tests should start their own registry on a free 127.0.0.1 port instead.
PACKAGES=(gcc make python3 g++ binutils skopeo umoci docker-registry gdb)

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
