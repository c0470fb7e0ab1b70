# Sourced by scripts/test and scripts/demo: installs what a fresh machine lacks, idempotently.
# Needs: Python 3.11+, and Debian's apt for Java 17 and Maven when they are missing.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export PATH="$HOME/.local/bin:$PATH"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    log "missing $*: install it (e.g. sudo apt-get install -y $*) and run again"
    exit 1
  fi
  if [ -z "${NOTIFY_APT_UPDATED:-}" ]; then
    apt-get update -qq
    export NOTIFY_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_uv() {
  if ! command -v uv >/dev/null 2>&1; then
    log "installing uv (from PyPI)"
    python3 -m pip install --quiet --user uv 2>/dev/null || python3 -m pip install --quiet uv
  fi
}

ensure_java_and_maven() {
  command -v java >/dev/null 2>&1 || { log "installing Java 17"; apt_install openjdk-17-jre-headless; }
  command -v mvn >/dev/null 2>&1 || { log "installing Maven"; apt_install maven; }
}

# The end-to-end tests of the parents' pages drive Debian's chromium (they skip without it, which CI must not
# do); Noto covers the Arabic, Cyrillic and Ethiopic letters that would otherwise show as empty boxes.
ensure_chromium() {
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
    || { log "installing chromium"; apt_install chromium; }
  if ! fc-list :lang=ar family 2>/dev/null | grep -q .; then
    log "installing fonts (fonts-noto-core)"
    apt_install fonts-noto-core
  fi
}

ensure_python_env() {
  ensure_uv
  log "installing Python dependencies (uv sync)"
  (cd "$REPO_ROOT" && uv sync --frozen --all-packages --quiet)
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
