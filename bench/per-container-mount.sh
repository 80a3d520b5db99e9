#!/bin/sh
# The approach of existing squash mount programs, for comparison only: one squashfuse mount per
# container next to its overlay, and a background loop per container that polls until podman has
# unmounted the overlay, then unmounts the squash. Not part of pcluster.
options=$2 merged=$3
lowers=$(printf '%s\n' "$options" | tr ',' '\n' | sed -n 's/^lowerdir=//p')
rest=$(printf '%s\n' "$options" | tr ',' '\n' | grep -v '^lowerdir=' | grep -v '^$' | paste -sd, -)
new=
for lower in $(printf '%s\n' "$lowers" | tr ':' ' '); do
	squash=$lower.squash
	# podman 5.8 names a layer by its directory (LAYER/diff); its side-car is found through LAYER/link.
	case $lower in */diff) [ -f "${lower%/diff}/link" ] && squash=${lower%/*/diff}/l/$(cat "${lower%/diff}/link").squash ;; esac
	if [ -e "$squash" ]; then
		mnt=${merged%/merged}/squash
		mkdir -p "$mnt"
		squashfuse "$squash" "$mnt"
		# Ends once the container's directory is gone too (removed before the overlay was ever seen).
		( while [ -d "${merged%/merged}" ] && { mountpoint -q "$merged" || [ ! -e "$merged.seen" ]; }; do
			mountpoint -q "$merged" && touch "$merged.seen"; sleep 1; done
			umount "$mnt"; rm -f "$merged.seen" ) </dev/null >/dev/null 2>&1 &
		lower=$mnt
	fi
	new=$new:$lower
done
exec fuse-overlayfs -o "lowerdir=${new#:},$rest" "$merged"
