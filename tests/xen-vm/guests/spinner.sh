# Guest "spinner": never blocks, so its vCPU is always runnable and the scheduler
# has to preempt it. Sourced by the guest's /init after the ready marker.
# xenvm-guest: vcpus=1 memory=128
while :; do :; done
