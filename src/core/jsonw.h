/*
 * jsonw.h
 *	  A small append-only writer of compact JSON text into a malloc'd buffer.
 *	  It builds server frames by concatenation, without a DOM: strings are
 *	  escaped as JSON requires, UTF-8 is kept as is (no \u escapes for
 *	  non-ASCII) and invalid UTF-8 bytes become U+FFFD, so the output is
 *	  always valid JSON in valid UTF-8.  An allocation failure is sticky:
 *	  later calls do nothing and jsonw_finish returns NULL.
 */
#ifndef CHAT_JSONW_H
#define CHAT_JSONW_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

typedef struct jsonw
{
	char	   *buf;
	size_t		len;
	size_t		cap;
	bool		failed;			/* an allocation failed; output is void */
} jsonw;

extern void jsonw_init(jsonw *w, size_t hint);
extern char *jsonw_finish(jsonw *w, size_t *len);

/* Raw text, copied as given: the caller vouches that it is valid JSON. */
extern void jsonw_raw(jsonw *w, const char *s, size_t n);
extern void jsonw_lit(jsonw *w, const char *s);

/* ,"key":  (key is a literal of ours, not escaped) */
extern void jsonw_field(jsonw *w, const char *key);

/* Values */
extern void jsonw_string(jsonw *w, const char *s, size_t n);
extern void jsonw_text(jsonw *w, const char *s);	/* NULL -> null */
extern void jsonw_opt(jsonw *w, const char *s); /* NULL or "" -> null */
extern void jsonw_int(jsonw *w, int64_t v);
extern void jsonw_bool(jsonw *w, bool v);
extern void jsonw_string_array(jsonw *w, char *const *a, size_t n);
extern bool jsonw_json(jsonw *w, const char *text);

#endif							/* CHAT_JSONW_H */
