#!/bin/sh
# A mounted /ocs/.crossbar/config.json wins; otherwise fill the template from the
# environment (OCS_ADDRESS_ROOT, OCS_REALM, OCS_PORT), as simonsobs/ocs-crossbar does.
set -eu
CBDIR=/ocs/.crossbar
CONFIG="$CBDIR/config.json"
if [ ! -f "$CONFIG" ]; then
    CONFIG=/tmp/crossbar-config.json
    sed -e "s/{address_root}/${OCS_ADDRESS_ROOT}/g" \
        -e "s/{realm}/${OCS_REALM}/g" \
        -e "s/{port}/${OCS_PORT}/g" \
        /ocs/config.json.template > "$CONFIG"
fi
exec crossbar start --cbdir "$CBDIR" --config "$CONFIG"
