# Sourced by deploy/*/test.sh: makes the Python venv of the deployment tests
# (deploy/requirements.txt) under target/tmp/deploy/venv, once per change of
# the requirements, and sets $PY to its interpreter. Needs python3 on the PATH
# and PyPI; the install is bounded to 180 s.
deploy_venv() {
    local root=$1 dir=$1/target/tmp/deploy
    local req=$root/deploy/requirements.txt
    local stamp=$dir/venv.stamp want
    want=$(sha256sum "$req" | cut -d' ' -f1)
    mkdir -p "$dir"
    (
        flock -w 300 9 || { echo "venv: lock $dir/venv.lock busy for 300 s" >&2; exit 1; }
        if [[ -x $dir/venv/bin/python && $(cat "$stamp" 2>/dev/null) == "$want" ]]; then
            exit 0
        fi
        rm -rf "$dir/venv" "$stamp"
        timeout 180 python3 -m venv "$dir/venv" &&
            timeout 180 "$dir/venv/bin/pip" install -q --disable-pip-version-check \
                -r "$req" >"$dir/pip.log" 2>&1 ||
            { echo "venv: install failed, see $dir/pip.log:" >&2; tail -20 "$dir/pip.log" >&2; exit 1; }
        echo "$want" >"$stamp"
    ) 9>"$dir/venv.lock" || return 1
    PY=$dir/venv/bin/python
}
