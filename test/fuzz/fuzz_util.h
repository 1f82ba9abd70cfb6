/*
 * fuzz_util.h
 *	  Helpers shared by the libFuzzer targets in test/fuzz: an invariant
 *	  check that aborts (so libFuzzer records the input as a crash), strict
 *	  UTF-8 and JSON validation of what the core writes, and a WebSocket
 *	  frame reader for the server's side of a connection.
 */
#ifndef CHAT_FUZZ_UTIL_H
#define CHAT_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * FZ_CHECK aborts with the failed condition when cond is false.  abort()
 * is a crash to libFuzzer, so a broken invariant is reported and saved
 * like a memory error.
 */
#define FZ_CHECK(cond) \
	((cond) ? (void) 0 : fz_fail(__FILE__, __LINE__, #cond))

extern void fz_fail(const char *file, int line, const char *what)
			__attribute__((noreturn));

/* fz_utf8_valid: s[0..n) is valid UTF-8 (RFC 3629). */
extern bool fz_utf8_valid(const char *s, size_t n);

/*
 * fz_json_object_valid: text[0..n) is one JSON object (duplicate member
 * names refused, strict UTF-8, no raw NUL).  With need_type the object
 * must have a string member "type".
 */
extern bool fz_json_object_valid(const char *text, size_t n, bool need_type);

/* fz_json_any_valid: text is any single JSON value (jansson's rules). */
extern bool fz_json_any_valid(const char *text, size_t n);

/*
 * A server-to-client WebSocket frame as fz_ws_next_frame reads it from a
 * byte buffer (the payload points into the buffer).
 */
typedef struct fz_frame
{
	bool		fin;
	int			rsv;
	int			opcode;
	bool		masked;
	const unsigned char *payload;
	size_t		len;
} fz_frame;

/*
 * fz_ws_next_frame reads one frame at buf[*off..len).  Returns 1 and
 * advances *off when a whole frame is there, 0 when more bytes are needed,
 * -1 when the header is impossible (a 64-bit length with the top bit set).
 */
extern int	fz_ws_next_frame(const unsigned char *buf, size_t len,
							 size_t *off, fz_frame *f);

/*
 * fz_check_server_frame asserts what every frame our server writes must
 * satisfy: final, unmasked, no RSV bits, a known opcode, text frames that
 * are one JSON object with a "type", close frames with a valid code (the
 * reason may echo the peer's bytes).
 */
extern void fz_check_server_frame(const fz_frame *f);

#endif							/* CHAT_FUZZ_UTIL_H */
