/*
 * jsonw.c
 *	  Compact JSON text by concatenation (see jsonw.h).  This is the writer
 *	  behind every server frame: it never builds a tree, copies runs of
 *	  plain bytes in bulk and escapes only what JSON requires.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsonw.h"

/* U+FFFD REPLACEMENT CHARACTER, written for each invalid UTF-8 byte */
#define UTF8_REPLACEMENT "\xEF\xBF\xBD"

/*
 * jsonw_init starts an empty text with room for about hint bytes.
 */
void
jsonw_init(jsonw *w, size_t hint)
{
	w->len = 0;
	w->cap = hint < 64 ? 64 : hint;
	w->buf = malloc(w->cap);
	w->failed = (w->buf == NULL);
}

/*
 * jsonw_reserve makes room for n more bytes plus the final NUL.  It returns
 * false, and marks the writer failed, when memory runs out.
 */
static bool
jsonw_reserve(jsonw *w, size_t n)
{
	size_t		need;
	size_t		cap;
	char	   *p;

	if (w->failed)
		return false;
	need = w->len + n + 1;
	if (need < n)
		goto oom;
	if (need <= w->cap)
		return true;
	cap = w->cap;
	while (cap < need)
	{
		if (cap > SIZE_MAX / 2)
			goto oom;
		cap *= 2;
	}
	p = realloc(w->buf, cap);
	if (p == NULL)
		goto oom;
	w->buf = p;
	w->cap = cap;
	return true;

oom:
	w->failed = true;
	return false;
}

/*
 * jsonw_finish ends the text and hands its buffer to the caller, with its
 * length in *len.  After a failed allocation it frees what was written and
 * returns NULL.
 */
char	   *
jsonw_finish(jsonw *w, size_t *len)
{
	char	   *out;

	if (!jsonw_reserve(w, 0))
	{
		free(w->buf);
		w->buf = NULL;
		if (len)
			*len = 0;
		return NULL;
	}
	w->buf[w->len] = '\0';
	if (len)
		*len = w->len;
	out = w->buf;
	w->buf = NULL;
	w->len = w->cap = 0;
	return out;
}

/*
 * jsonw_raw appends n bytes as they are.
 */
void
jsonw_raw(jsonw *w, const char *s, size_t n)
{
	if (n == 0 || !jsonw_reserve(w, n))
		return;
	memcpy(w->buf + w->len, s, n);
	w->len += n;
}

/*
 * jsonw_lit appends a NUL-terminated text as it is.
 */
void
jsonw_lit(jsonw *w, const char *s)
{
	jsonw_raw(w, s, strlen(s));
}

/*
 * jsonw_field starts the next member of an object: ,"key":
 */
void
jsonw_field(jsonw *w, const char *key)
{
	jsonw_raw(w, ",\"", 2);
	jsonw_lit(w, key);
	jsonw_raw(w, "\":", 2);
}

/*
 * utf8_valid_len returns the length of the valid UTF-8 sequence that starts
 * at s (at most n bytes available), or 0 when it is invalid: overlong
 * forms, surrogates and code points past U+10FFFF are refused (RFC 3629).
 */
static size_t
utf8_valid_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	unsigned char lo = 0x80;
	unsigned char hi = 0xBF;
	size_t		more;
	size_t		i;

	if (c >= 0xC2 && c <= 0xDF)
		more = 1;
	else if (c >= 0xE0 && c <= 0xEF)
	{
		more = 2;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	}
	else if (c >= 0xF0 && c <= 0xF4)
	{
		more = 3;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	}
	else
		return 0;
	if (n <= more || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i <= more; i++)
		if ((s[i] & 0xC0) != 0x80)
			return 0;
	return more + 1;
}

/*
 * jsonw_escape_byte appends the escape of one ASCII byte that JSON does not
 * allow raw inside a string (a quote, a backslash, a control character).
 */
static void
jsonw_escape_byte(jsonw *w, unsigned char c)
{
	char		tmp[8];

	switch (c)
	{
		case '"':
			jsonw_raw(w, "\\\"", 2);
			break;
		case '\\':
			jsonw_raw(w, "\\\\", 2);
			break;
		case '\n':
			jsonw_raw(w, "\\n", 2);
			break;
		case '\r':
			jsonw_raw(w, "\\r", 2);
			break;
		case '\t':
			jsonw_raw(w, "\\t", 2);
			break;
		case '\b':
			jsonw_raw(w, "\\b", 2);
			break;
		case '\f':
			jsonw_raw(w, "\\f", 2);
			break;
		default:
			snprintf(tmp, sizeof(tmp), "\\u%04x", c);
			jsonw_raw(w, tmp, 6);
			break;
	}
}

/*
 * jsonw_string appends s[0..n) as a JSON string.  Runs of bytes that need
 * no escape are copied in one go; valid UTF-8 sequences are kept as they
 * are and each byte that is not part of one becomes U+FFFD.
 */
void
jsonw_string(jsonw *w, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *) s;
	size_t		i = 0;

	jsonw_raw(w, "\"", 1);
	while (i < n)
	{
		size_t		run = i;
		size_t		seq;

		while (run < n && p[run] >= 0x20 && p[run] < 0x80 &&
			   p[run] != '"' && p[run] != '\\')
			run++;
		jsonw_raw(w, s + i, run - i);
		i = run;
		if (i >= n)
			break;
		if (p[i] < 0x80)
		{
			jsonw_escape_byte(w, p[i]);
			i++;
			continue;
		}
		seq = utf8_valid_len(p + i, n - i);
		if (seq == 0)
		{
			jsonw_raw(w, UTF8_REPLACEMENT, 3);
			i++;
			continue;
		}
		jsonw_raw(w, s + i, seq);
		i += seq;
	}
	jsonw_raw(w, "\"", 1);
}

/*
 * jsonw_text appends a NUL-terminated string, or null for NULL.
 */
void
jsonw_text(jsonw *w, const char *s)
{
	if (s == NULL)
		jsonw_raw(w, "null", 4);
	else
		jsonw_string(w, s, strlen(s));
}

/*
 * jsonw_opt appends a NUL-terminated string, or null when it is NULL or
 * empty (how the exchange structs spell a NULL uuid or timestamp).
 */
void
jsonw_opt(jsonw *w, const char *s)
{
	jsonw_text(w, (s != NULL && s[0] != '\0') ? s : NULL);
}

/*
 * jsonw_int appends a 64-bit integer.
 */
void
jsonw_int(jsonw *w, int64_t v)
{
	char		tmp[24];
	int			n;

	n = snprintf(tmp, sizeof(tmp), "%" PRId64, v);
	jsonw_raw(w, tmp, (size_t) n);
}

/*
 * jsonw_bool appends true or false.
 */
void
jsonw_bool(jsonw *w, bool v)
{
	if (v)
		jsonw_raw(w, "true", 4);
	else
		jsonw_raw(w, "false", 5);
}

/*
 * jsonw_string_array appends an array of NUL-terminated strings.
 */
void
jsonw_string_array(jsonw *w, char *const *a, size_t n)
{
	size_t		i;

	jsonw_raw(w, "[", 1);
	for (i = 0; i < n; i++)
	{
		if (i > 0)
			jsonw_raw(w, ",", 1);
		jsonw_text(w, a[i]);
	}
	jsonw_raw(w, "]", 1);
}

/*
 * jsonw_json appends a JSON text that we produced ourselves (a jsonb value
 * read back from the database), dropping the whitespace outside strings so
 * the frame stays compact.  It is not re-parsed; only its brackets and
 * strings are checked to balance.  NULL gives null, and so does a text
 * that does not balance, in which case the result is false.
 */
bool
jsonw_json(jsonw *w, const char *text)
{
	size_t		start = w->len;
	size_t		i;
	size_t		from = 0;
	int			depth = 0;
	bool		in_str = false;
	bool		any = false;

	if (text == NULL)
	{
		jsonw_raw(w, "null", 4);
		return true;
	}
	for (i = 0; text[i] != '\0' && depth >= 0; i++)
	{
		char		c = text[i];

		if (in_str)
		{
			if (c == '\\' && text[i + 1] != '\0')
				i++;
			else if (c == '"')
				in_str = false;
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
		{
			jsonw_raw(w, text + from, i - from);
			from = i + 1;
			continue;
		}
		any = true;
		if (c == '"')
			in_str = true;
		else if (c == '[' || c == '{')
			depth++;
		else if (c == ']' || c == '}')
			depth--;
	}
	jsonw_raw(w, text + from, i - from);
	if (in_str || depth != 0 || !any)
	{
		w->len = start;
		jsonw_raw(w, "null", 4);
		return false;
	}
	return true;
}
