/*
 * preload_stub.c
 *	  Preloaded next to the ASan runtime into the uninstrumented postgres
 *	  binary, so that the runtime can initialise without deadlocking.
 *
 *	  Loaded with LD_PRELOAD, the runtime initialises lazily, on the first
 *	  malloc.  In postgres that first malloc happens inside bindtextdomain(),
 *	  called by libgpg-error's constructor (postgres -> libsystemd ->
 *	  libgcrypt -> libgpg-error), with glibc's _nl_state_lock held for
 *	  writing.  The runtime's initialisation looks up the optional symbol
 *	  swift_demangle with dlsym(); when it is missing, the dlerror() that
 *	  follows translates its message through dcgettext(), which takes the
 *	  same lock: the process hangs before main() (postgres -V never
 *	  returns).  Defining the symbol makes the lookup succeed, so no error
 *	  message is formatted.  The runtime only calls it for symbols that are
 *	  mangled Swift names, which never occur here, and a NULL result means
 *	  "not demangled".
 */
#include <stddef.h>

extern char *swift_demangle(const char *mangled, size_t len, char *out,
							size_t *outlen, unsigned flags);

char *
swift_demangle(const char *mangled, size_t len, char *out, size_t *outlen,
			   unsigned flags)
{
	return NULL;
}
