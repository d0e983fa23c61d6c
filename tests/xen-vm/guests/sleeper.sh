# Guest "sleeper": two jobs, each alternating about 50 ms of busy work and
# `sleep 0.05`, so both vCPUs keep blocking and waking (runstate changes, wakeups).
# Sourced by the guest's /init after the ready marker.
# xenvm-guest: vcpus=2 memory=128

# Centiseconds since boot, from /proc/uptime (10 ms resolution), with shell builtins
# only, so the busy loop does not fork. "12.05" -> 1205; the "1$f - 100" trick keeps
# fractions like "08" from being read as octal.
now_cs() {
    read -r up _ < /proc/uptime
    NOW=$(( ${up%.*} * 100 + 1${up#*.} - 100 ))
}

burn_50ms() {
    now_cs
    end=$((NOW + 5))
    while [ "$NOW" -lt "$end" ]; do now_cs; done
}

job() {
    while :; do
        burn_50ms
        sleep 0.05
    done
}

job &
job &
wait
