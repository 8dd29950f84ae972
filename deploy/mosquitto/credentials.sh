#!/bin/sh
# Write deploy/mosquitto/passwd: a random password for the bridge, the sensor gateway and each
# station code given (default: the demo's stations), printed once here; only hashes are kept.
# Then set MQTT_BRIDGE_PASSWORD (docker-compose.yml) to the bridge's and configure each
# station's equipment with its own. Needs mosquitto_passwd (apt install mosquitto-clients, or:
#   docker run --rm -v "$PWD/deploy/mosquitto:/m" eclipse-mosquitto:2 sh /m/credentials.sh).
set -eu
dir=$(dirname "$0")
stations=${*:-PR-STK-1 PR-PRS-1 PR-FRM-1 YK-STK-1 YK-STK-2 YK-PRS-1 YK-FRM-1}
passwd="$dir/passwd"
: > "$passwd"
for user in mes-bridge env-gateway $stations; do
    password=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
    mosquitto_passwd -b "$passwd" "$user" "$password"
    echo "$user $password"
done
chmod 0644 "$passwd"
