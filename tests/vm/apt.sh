# tests/vm/apt.sh - sourced by the rig's scripts that fetch from Debian's
# archive (kernel, nicsim/build): the private apt configuration.  Expects
# CACHE and KEYRING; defines write_sources and APT_OPTS.  The system's apt
# sources are never touched: own sources list, lists and cache under
# $CACHE/apt, and apt checks the signed Release files and package hashes.

# The mirror the machine already uses for Debian (honours local mirrors and
# proxies), else deb.debian.org.
mirror_for() { # suite fallback
	local uri
	uri=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null |
		awk -v s="$1" '$2 == s { print $1; exit }')
	echo "${uri:-$2}"
}

write_sources() {
	local main sec s
	main=${KTLS_VM_MIRROR:-$(mirror_for bookworm http://deb.debian.org/debian/)}
	sec=${KTLS_VM_SECURITY_MIRROR:-$(mirror_for bookworm-security http://deb.debian.org/debian-security/)}
	{
		for s in bookworm bookworm-updates ${KTLS_VM_NEW_SUITES:-trixie trixie-backports sid}; do
			echo "deb [signed-by=$KEYRING] $main $s main"
		done
		echo "deb [signed-by=$KEYRING] $sec bookworm-security main"
	} >"$CACHE/apt/sources.list.new"
	mv -f "$CACHE/apt/sources.list.new" "$CACHE/apt/sources.list"
}

APT_OPTS=(
	-o "Dir::Etc::SourceList=$CACHE/apt/sources.list"
	-o "Dir::Etc::SourceParts=/dev/null"
	-o "Dir::Etc::Preferences=/dev/null"
	-o "Dir::Etc::PreferencesParts=/dev/null"
	-o "Dir::State::Lists=$CACHE/apt/lists"
	-o "Dir::Cache=$CACHE/apt/cache"
	-o "APT::Architectures::=amd64"
	-o "Acquire::Languages=none"
	-o "APT::Sandbox::User=$(id -un)"
)

