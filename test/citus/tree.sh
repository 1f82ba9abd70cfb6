# Citus for the tests and the benchmark: built once from the vendored
# tarball into a cache, and a private PostgreSQL tree that holds it.
# Source this file (TOP set).  Citus is AGPL-3.0: built for the tests only,
# never linked into chat or shipped (see ../shared/vendor/README.md).
#
#   citus_build          builds Citus into $CITUS_CACHE unless it is there
#                        (about 3.5 minutes with make -j2 on 2 idle cores);
#                        installs liblz4-dev and libzstd-dev when missing
#   citus_tree WORK      makes WORK/root: the PostgreSQL of the pg_config on
#                        PATH (binaries copied, the rest linked, with the chat
#                        that `make install` put there) plus Citus; then puts
#                        its bin first on PATH and sets PGBIN
#
# Both print what went wrong on stderr and return non-zero on failure.

CITUS_VERSION=13.0.5
# CI has the vendored sources next to the repository, as ../shared/vendor
CITUS_TARBALL=${CHAT_VENDOR_DIR:-$TOP/../shared/vendor}/citus-$CITUS_VERSION.tar.gz

citus_build() {
  local missing=() p sum start SUDO=
  if [ ! -f "$CITUS_TARBALL" ]; then
    echo "no $CITUS_TARBALL: the vendored Citus source is missing" >&2
    return 1
  fi
  for p in liblz4-dev libzstd-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    echo "installing: ${missing[*]}"
    { $SUDO apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null; } || { echo "apt-get install ${missing[*]} failed" >&2; return 1; }
  fi
  # one build per tarball and PostgreSQL tree (the paths it installs to)
  sum=$(sha256sum "$CITUS_TARBALL" | cut -c1-12)
  CITUS_CACHE=${CHAT_CITUS_CACHE:-/tmp/chat-citus-cache/$CITUS_VERSION-$sum-$(pg_config --pkglibdir | md5sum | cut -c1-8)}
  [ -f "$CITUS_CACHE/done" ] && return 0
  echo "building Citus $CITUS_VERSION into $CITUS_CACHE (once)"
  rm -rf "$CITUS_CACHE" && mkdir -p "$CITUS_CACHE/src" || return 1
  start=$SECONDS
  # DESTDIR: nothing is installed into the tree of the pg_config on PATH.
  # with_llvm=no: no JIT bitcode (PGXS would compile every file a second
  # time with clang); the tests never JIT-compile Citus's functions.
  if ! ( cd "$CITUS_CACHE/src" && tar xzf "$CITUS_TARBALL" --strip-components=1 &&
         ./configure --without-libcurl >"$CITUS_CACHE/configure.log" 2>&1 &&
         make -j2 with_llvm=no >"$CITUS_CACHE/make.log" 2>&1 &&
         make install with_llvm=no DESTDIR="$CITUS_CACHE/dest" >"$CITUS_CACHE/install.log" 2>&1 ); then
    tail -30 "$CITUS_CACHE"/*.log >&2
    echo "the Citus build failed (logs in $CITUS_CACHE)" >&2
    return 1
  fi
  rm -rf "$CITUS_CACHE/src"
  touch "$CITUS_CACHE/done"
  echo "Citus built in $((SECONDS - start)) s"
}

# As /work/pgtree.sh does: the binaries find their libraries and share
# directory relative to themselves, so the layout under WORK/root is the
# system's; Citus's files replace any link of the same name (never written
# through one).
citus_tree() {
  local root=$1/root bin lib share f
  bin=$(pg_config --bindir) lib=$(pg_config --pkglibdir) share=$(pg_config --sharedir)
  _link_all() { for f in "$1"/*; do [ "$(basename "$f")" = "$3" ] || ln -sf "$f" "$2/$(basename "$f")"; done; }
  mkdir -p "$root$bin" "$root$lib" "$root$share/extension" || return 1
  cp -a "$bin/." "$root$bin/" || return 1
  _link_all "$lib" "$root$lib" bitcode
  _link_all "$share" "$root$share" extension
  _link_all "$share/extension" "$root$share/extension" -
  for f in "$CITUS_CACHE/dest$lib"/citus*; do
    rm -rf "$root$lib/$(basename "$f")"; cp -a "$f" "$root$lib/" || return 1
  done
  for f in "$CITUS_CACHE/dest$share/extension"/citus*; do
    rm -f "$root$share/extension/$(basename "$f")"; cp -a "$f" "$root$share/extension/" || return 1
  done
  chmod -R a+rX "$1"
  export PATH=$root$bin:$PATH
  export PGBIN=$root$bin
  if [ "$(pg_config --pkglibdir)" != "$root$lib" ] || [ ! -f "$root$lib/citus.so" ] ||
     [ ! -e "$root$lib/chat.so" ]; then
    echo "private tree: pg_config says $(pg_config --pkglibdir); citus.so and chat.so must be there" >&2
    return 1
  fi
}
