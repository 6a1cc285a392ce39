#!/bin/sh
# Builds the turnwall Debian package with nfpm: `make deb` runs this.
#
#   packaging/build-deb.sh OUTDIR
#
# Environment: GO (go), NFPM (the nfpm command; the Makefile pins it),
# DEB_VERSION (the package version; default from git: BASE~gitDATE.REV),
# GOARCH (target architecture; default the host's).
# The build is reproducible for one commit: dates come from the commit
# (SOURCE_DATE_EPOCH) and the binary is built with -trimpath.
set -eu

out=${1:?usage: build-deb.sh OUTDIR}
GO=${GO:-go}
NFPM=${NFPM:?set NFPM to the nfpm command (make deb does)}
cd "$(dirname "$0")/.."

base=$(cat packaging/VERSION)
if rev=$(git rev-parse HEAD 2>/dev/null); then
	SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
	day=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y%m%d)
	dirty=""
	git diff --quiet HEAD -- 2>/dev/null || dirty="+dirty"
	version=${DEB_VERSION:-$base~git$day.$(git rev-parse --short=12 HEAD)$dirty}
else
	rev=""
	SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-0}
	version=${DEB_VERSION:-$base}
fi
export SOURCE_DATE_EPOCH
case $version in
[0-9]*) ;;
*) echo "build-deb.sh: package version $version must start with a digit" >&2; exit 2 ;;
esac

arch=${GOARCH:-$($GO env GOARCH)}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT INT TERM

pkg=github.com/turnwall/turnwall/compiler/version
CGO_ENABLED=0 GOOS=linux GOARCH=$arch $GO build -trimpath -buildvcs=false \
	-ldflags "-s -w -buildid= -X $pkg.version=$version -X $pkg.revision=$rev" \
	-o "$stage/turnwall" ./cmd/turnwall

# Man pages, the Markdown CLI reference and completions, from the commands
# themselves (a host binary: the package's may be for another architecture).
CGO_ENABLED=0 $GO build -trimpath -buildvcs=false \
	-ldflags "-X $pkg.version=$version -X $pkg.revision=$rev" -o "$stage/turnwall-host" ./cmd/turnwall
"$stage/turnwall-host" gen-docs --man "$stage/man" --markdown "$stage/cli" --completions "$stage/completions"
rm "$stage/turnwall-host"
gzip -9n "$stage"/man/*.1

# A native package's changelog: this build's one entry.
date=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
{
	echo "turnwall ($version) unstable; urgency=medium"
	echo
	echo "  * Built from revision ${rev:-unknown}."
	echo
	echo " -- turnwall maintainers <turnwall@example.com>  $date"
} | gzip -9n >"$stage/changelog.gz"

# Copies of the repository's files the package holds, and every staged
# file's time set to the commit's: the same commit gives the same package.
mkdir -p "$stage/packaging"
cp -R README.md docs policies "$stage/"
cp -R packaging/copyright packaging/lintian-overrides packaging/examples packaging/etc \
	packaging/systemd packaging/scripts "$stage/packaging/"
find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

# nfpm expands the environment in some fields only: fill in the rest here.
sed -e "s|\${TW_STAGE}|$stage|g" -e "s|\${TW_VERSION}|$version|g" -e "s|\${TW_ARCH}|$arch|g" \
	packaging/nfpm.yaml >"$stage/nfpm.yaml"
mkdir -p "$out"
$NFPM package --config "$stage/nfpm.yaml" --packager deb --target "$out/turnwall_${version}_$arch.deb"
echo "$out/turnwall_${version}_$arch.deb"
