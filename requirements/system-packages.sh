#!/bin/sh
# The Debian/Ubuntu packages smgluon needs besides Python (`make setup` runs this):
#   default-jre-headless   a Java runtime for multi-model-server (every endpoint)
#   dataset-fashion-mnist  Fashion-MNIST in /usr/share/datasets, so `make train` works offline
# Installs what is missing when run as root with apt-get; otherwise, or if apt-get fails, prints
# the one command that installs it. Never fails the setup: the Python side works without them.
#   SMGLUON_SYSTEM_PACKAGES=skip        only print the command, install nothing
#   SMGLUON_FASHION_MNIST_DIR=DIR       where the data set is looked for (default: the package's folder)
set -u

data_dir=${SMGLUON_FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
missing=""
if ! command -v java >/dev/null 2>&1 && ! [ -x "${JAVA_HOME:-/nonexistent}/bin/java" ]; then
    missing="default-jre-headless"
fi
if ! [ -d "$data_dir" ]; then
    missing="${missing:+$missing }dataset-fashion-mnist"
fi
[ -n "$missing" ] || exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ "${SMGLUON_SYSTEM_PACKAGES:-install}" != skip ]; then
    echo "system packages: installing $missing with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    # A fresh machine may have no package lists yet: update them only when the first try fails.
    # shellcheck disable=SC2086  # one word per package
    if apt-get install -y -q $missing || { apt-get update -q && apt-get install -y -q $missing; }; then
        exit 0
    fi
    echo "system packages: apt-get could not install $missing (no network or no Debian mirror?)"
fi
if command -v apt-get >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo "
    echo "system packages: $missing not installed; run: ${sudo}apt-get install -y $missing"
else
    echo "system packages: $missing not installed; install a Java runtime (for serving) and put the Fashion-MNIST" \
         "files in $data_dir, or fetch them with \`smgluon data fetch fashion-mnist\` when online"
fi
exit 0
