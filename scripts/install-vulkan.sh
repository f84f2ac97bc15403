#!/usr/bin/env bash
# Installs a software Vulkan driver that Dawn (the npm `webgpu` package) accepts, for WebGPU
# on machines without a GPU: Mesa >= 24 lavapipe from Debian bookworm-backports. Debian 12's
# own Mesa 22 lavapipe is rejected by Dawn. The system's apt configuration is left alone: the
# backports package is downloaded with a private apt config and unpacked into .vulkan/ in the
# repository, with an ICD file runtime/backend.ts finds there (or point VK_DRIVER_FILES at it).
# The Debian mirror is read from the machine's own apt sources. Idempotent.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/.vulkan"
icd="$dest/lvp_icd.json"
if [ -f "$icd" ] && [ -z "${FORCE:-}" ]; then echo "vulkan: $icd already present"; exit 0; fi

export DEBIAN_FRONTEND=noninteractive
sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
# the loader and the dependencies of Mesa's Vulkan drivers, from the regular suite
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends libvulkan1 mesa-vulkan-drivers >/dev/null

mirror="$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)"
if [ -z "$mirror" ]; then
  mirror="$(grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)"
fi
[ -n "$mirror" ] || { echo "vulkan: no Debian mirror found in the apt sources" >&2; exit 1; }
codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/etc"
echo "deb $mirror ${codename}-backports main" > "$work/etc/sources.list"
opts=(-o Dir::Etc::sourcelist="$work/etc/sources.list" -o Dir::Etc::sourceparts=- -o Dir::State::Lists="$work/lists" -o Dir::Cache="$work/cache" -o APT::Get::List-Cleanup=0 -o APT::Sandbox::User=root)
apt-get "${opts[@]}" update -qq
(cd "$work" && apt-get "${opts[@]}" download "mesa-vulkan-drivers/${codename}-backports" -qq)
deb="$(ls "$work"/mesa-vulkan-drivers_*.deb)"
rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
dpkg-deb -x "$deb" "$dest.tmp/root"
lvp="$(find "$dest.tmp/root" -name 'libvulkan_lvp.so' | head -n1)"
[ -n "$lvp" ] || { echo "vulkan: libvulkan_lvp.so not found in $deb" >&2; exit 1; }
rm -rf "$dest" && mv "$dest.tmp" "$dest"
lvp="${lvp/$dest.tmp/$dest}"
printf '{\n  "file_format_version": "1.0.0",\n  "ICD": { "library_path": "%s", "api_version": "1.3.0" }\n}\n' "$lvp" > "$icd"
echo "vulkan: $(basename "$deb") -> $icd"
