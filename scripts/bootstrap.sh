# Sourced by scripts/run and scripts/test: a virtual environment with the pinned dependencies.
# Reinstalls only when pyproject.toml, requirements.lock or requirements-vectors.txt changed
# since the last install.

ensure_venv() {
    local extras="$1" target="." stamp want
    [ -n "$extras" ] && target=".[$extras]"
    stamp=".venv/.installed${extras:+-$extras}"
    if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        echo "Python 3.11 or newer is required as python3" >&2
        return 1
    fi
    # A venv whose creation failed half-way (no ensurepip: Debian's python3-venv missing)
    # has a python but no pip; make it again rather than fail on it at every run.
    if ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
        rm -rf .venv
        if ! python3 -m venv .venv; then
            rm -rf .venv
            echo "python3 -m venv failed; install Python's venv module (Debian: apt install python3-venv)" >&2
            return 1
        fi
    fi
    # Hashed by Python, which is here by now: macOS has no sha256sum.
    want=$(cat pyproject.toml requirements.lock requirements-vectors.txt \
        | python3 -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest()[:16])')
    if ! _installed "$want" "$extras"; then
        echo "installing dependencies into .venv ..." >&2
        .venv/bin/python -m pip install --quiet --disable-pip-version-check pip==26.3
        .venv/bin/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e "$target"
        .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
            -r requirements-vectors.txt
        echo "$want" > "$stamp"
    fi
}

# Whether an install of the same files with every extra in $2 (comma-separated) is in .venv:
# scripts/run after scripts/test has what it needs, and installing again would build the
# project's editable package, which needs the package index.
_installed() {
    local want="$1" extras="$2" stamp have extra complete
    for stamp in .venv/.installed*; do
        [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] || continue
        have="${stamp#.venv/.installed}"
        have=",${have#-},"
        complete=1
        for extra in ${extras//,/ }; do
            case "$have" in *",$extra,"*) ;; *) complete=0 ;; esac
        done
        [ "$complete" = 1 ] && return 0
    done
    return 1
}

# Debian's Chromium for the browser tests, which Playwright drives; no browser is downloaded.
ensure_chromium() {
    [ -x /usr/bin/chromium ] && return 0
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo -n)
    echo "installing Debian's chromium for the browser tests ..." >&2
    if ! "${sudo[@]}" apt-get install -y -qq chromium >/dev/null 2>&1; then
        "${sudo[@]}" apt-get update -qq >/dev/null 2>&1 || true
        "${sudo[@]}" apt-get install -y -qq chromium >/dev/null 2>&1 \
            || echo "could not install chromium (apt install chromium); the browser test will say so" >&2
    fi
}
