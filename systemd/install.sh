#!/bin/sh
# Install skinretouch as a systemd service: `sudo make install-service` from the project folder.
#
# Settings (environment variables, defaults in brackets):
#   PREFIX   where the service's own virtual environment goes       [/opt/skinretouch]
#   HOT      the hot folder (created if missing)                     [/srv/skinretouch/hot]
#   CONFIG   the configuration file (written only if missing)        [/etc/skinretouch/config.toml]
#   SERVICE_USER  the dedicated user the daemon runs as             [skinretouch]
#   UNIT_DIR      where the unit file goes                           [/etc/systemd/system]
#   START    0: install and enable but do not start                  [1]
set -eu

PREFIX=${PREFIX:-/opt/skinretouch}
HOT=${HOT:-/srv/skinretouch/hot}
CONFIG=${CONFIG:-/etc/skinretouch/config.toml}
SERVICE_USER=${SERVICE_USER:-skinretouch}
UNIT_DIR=${UNIT_DIR:-/etc/systemd/system}
START=${START:-1}
SYSTEMCTL=${SYSTEMCTL:-systemctl}
PYTHON=${PYTHON:-python3}
SOURCE=$(cd "$(dirname "$0")/.." && pwd)

if [ "$(id -u)" != 0 ]; then
    echo "install-service: run as root (sudo make install-service)" >&2
    exit 1
fi

say() { printf '==> %s\n' "$*"; }

# 1. The code, in a virtual environment of its own (a venv cannot be moved, so build it there).
if [ ! -x "$PREFIX/.venv/bin/skinretouch" ]; then
    say "installing skinretouch into $PREFIX/.venv"
    mkdir -p "$PREFIX"
    "$PYTHON" -m venv "$PREFIX/.venv"
    "$PREFIX/.venv/bin/python" -m pip install -q --upgrade pip
    "$PREFIX/.venv/bin/python" -m pip install -q "$SOURCE"
else
    say "using the existing $PREFIX/.venv (delete it to reinstall)"
fi

# 2. The user the daemon runs as.
if ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
    say "creating the system user $SERVICE_USER"
    useradd --system --home-dir /var/lib/skinretouch --shell /usr/sbin/nologin "$SERVICE_USER"
fi

# 3. The hot folder and the configuration.
mkdir -p "$HOT"
chown "$SERVICE_USER:$SERVICE_USER" "$HOT"
chmod 2775 "$HOT"  # group-writable, new files keep the group
if [ ! -e "$CONFIG" ]; then
    say "writing $CONFIG"
    mkdir -p "$(dirname "$CONFIG")"
    cat >"$CONFIG" <<EOF
# skinretouch configuration; every key and its default: config.toml in the project.
[daemon]
folders = ["$HOT"]
# Where \`skinretouch status\` finds the daemon's status (systemd's StateDirectory).
state_dir = "/var/lib/skinretouch"
EOF
else
    say "keeping the existing $CONFIG"
fi

# 4. The kernels, compiled into the service's numba cache now: left to the first photo, that
#    photo waits about a minute and a half (numba compiles each kernel on its first call).
CACHE=/var/cache/skinretouch  # the unit's CacheDirectory= and NUMBA_CACHE_DIR
mkdir -p "$CACHE/numba"
chown -R "$SERVICE_USER:$SERVICE_USER" "$CACHE"
say "compiling the kernels into $CACHE/numba (once per install; about 1.5 minutes on 2 cores)"
if ! runuser -u "$SERVICE_USER" -- env NUMBA_CACHE_DIR="$CACHE/numba" \
        "$PREFIX/.venv/bin/skinretouch" compile --config "$CONFIG"; then
    say "compiling failed (see above): the first photo will compile the kernels instead"
fi

# 5. The unit, with this installation's paths.
say "installing $UNIT_DIR/skinretouch.service"
mkdir -p "$UNIT_DIR"
sed -e "s#/opt/skinretouch#$PREFIX#g" \
    -e "s#/etc/skinretouch/config.toml#$CONFIG#g" \
    -e "s#^ReadWritePaths=.*#ReadWritePaths=$HOT#" \
    -e "s#^User=.*#User=$SERVICE_USER#" \
    -e "s#^Group=.*#Group=$SERVICE_USER#" \
    "$SOURCE/systemd/skinretouch.service" >"$UNIT_DIR/skinretouch.service"
chmod 644 "$UNIT_DIR/skinretouch.service"
if command -v systemd-analyze >/dev/null 2>&1; then
    systemd-analyze verify "$UNIT_DIR/skinretouch.service"
fi

# 6. Enable (and start) it.
"$SYSTEMCTL" daemon-reload
if [ "$START" = 1 ]; then
    "$SYSTEMCTL" enable --now skinretouch.service
    say "started; drop photos into $HOT. Status: systemctl status skinretouch; logs: journalctl -u skinretouch"
else
    "$SYSTEMCTL" enable skinretouch.service
    say "enabled; start it with: systemctl start skinretouch"
fi
say "more hot folders: add them to $CONFIG and to ReadWritePaths= (systemctl edit skinretouch)"
