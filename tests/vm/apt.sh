# tests/vm/apt.sh - sourced by the rig's scripts that fetch from Debian's
# archive (kernel, nicsim/build, nfs-utils): the private apt configuration.
# Expects CACHE and KEYRING, and APT_DIR when not $CACHE/apt; defines
# write_sources and APT_OPTS.  The system's apt sources are never touched:
# own sources list, lists and cache under $APT_DIR, and apt checks the
# signed Release files and package hashes.

# The mirror the machine already uses for Debian (honours local mirrors and
# proxies), else deb.debian.org.
mirror_for() { # suite fallback
	local uri
	uri=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null |
		awk -v s="$1" '$2 == s { print $1; exit }')
	echo "${uri:-$2}"
}

# write_sources [SUITE...]: the kernels' suites, or exactly the ones named
# (a separate APT_DIR keeps those lists apart from the kernels').
write_sources() {
	local main sec s
	main=${KTLS_VM_MIRROR:-$(mirror_for bookworm http://deb.debian.org/debian/)}
	sec=${KTLS_VM_SECURITY_MIRROR:-$(mirror_for bookworm-security http://deb.debian.org/debian-security/)}
	{
		if [ $# -gt 0 ]; then
			for s in "$@"; do
				echo "deb [signed-by=$KEYRING] $main $s main"
			done
		else
			for s in bookworm bookworm-updates ${KTLS_VM_NEW_SUITES:-trixie-backports sid}; do
				echo "deb [signed-by=$KEYRING] $main $s main"
			done
			echo "deb [signed-by=$KEYRING] $sec bookworm-security main"
		fi
	} >"$APT_DIR/sources.list.new"
	mv -f "$APT_DIR/sources.list.new" "$APT_DIR/sources.list"
}

APT_DIR=${APT_DIR:-$CACHE/apt}
APT_OPTS=(
	-o "Dir::Etc::SourceList=$APT_DIR/sources.list"
	-o "Dir::Etc::SourceParts=/dev/null"
	-o "Dir::Etc::Preferences=/dev/null"
	-o "Dir::Etc::PreferencesParts=/dev/null"
	-o "Dir::State::Lists=$APT_DIR/lists"
	-o "Dir::Cache=$APT_DIR/cache"
	-o "APT::Architectures::=amd64"
	-o "Acquire::Languages=none"
	-o "APT::Sandbox::User=$(id -un)"
)

