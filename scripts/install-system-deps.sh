#!/usr/bin/env bash
# Debian packages the agent needs (--runtime: libmagic, for type detection; Tesseract's English
# and orientation data, for OCR; DejaVu fonts; catdoc, for Word 97-2003 .doc) and, by default,
# those its tests and benchmarks need too: Prometheus (with promtool) for the observability
# tests, redis-server for the Redis queue backend's tests, python3-doc as a real corpus.
# Hebrew OCR data, for the tests of several OCR languages; LibreOffice Impress (headless), which
# reads PowerPoint 97-2003 .ppt, Writer, which reads the .doc files catdoc cannot, and Calc, which
# reads the workbooks openpyxl cannot (optional at run time: `ingest-agent check` says when
# LibreOffice is missing). Chromium and its driver, for the web page's browser tests; the
# programs tests and benchmarks call besides (tests/test_system_deps.py checks every one).
# Installs only what is missing, so a second run costs nothing; without root (or sudo) it says
# in one line what to install and stops.
set -euo pipefail

runtime_only=false
list_only=false
for arg in "$@"; do
    case "$arg" in
        --runtime) runtime_only=true ;;
        --list) list_only=true ;;  # print the packages (one a line) and change nothing
        *) echo "usage: $0 [--runtime] [--list]" >&2; exit 2 ;;
    esac
done

packages=(libmagic1 tesseract-ocr tesseract-ocr-eng tesseract-ocr-osd fonts-dejavu-core catdoc)
if ! $runtime_only; then
    # antiword: the legacy-reader benchmark compares it with catdoc; time: GNU time measures
    # the agent's peak memory in benchmarks; systemd: systemd-analyze checks the unit file.
    packages+=(prometheus redis-server python3-doc tesseract-ocr-heb libreoffice-impress-nogui
               libreoffice-writer-nogui libreoffice-calc-nogui chromium chromium-driver antiword
               time systemd)
fi
if $list_only; then
    printf '%s\n' "${packages[@]}"
    exit 0
fi
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
    echo "ingest-agent needs: ${missing[*]} (Debian names; install your system's equivalents)" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null || ! sudo -n true 2>/dev/null; then
        echo "ingest-agent needs Debian packages it cannot install without root: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
    SUDO="sudo -n"
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
