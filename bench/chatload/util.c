/*
 * util.c
 *	  Clock, base64, HS256 tokens, the latency histogram and the JSON form
 *	  of a proc's result (how the parent merges them).
 */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "chatload.h"

int64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void
fatal(const char *fmt,...)
{
	va_list		ap;

	fputs("chatload: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

/* --- base64 -------------------------------------------------------------- */

static size_t
b64(const unsigned char *in, size_t n, char *out, const char *alpha, bool pad)
{
	size_t		o = 0;
	size_t		i;

	for (i = 0; i + 2 < n; i += 3)
	{
		uint32_t	v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8 | in[i + 2];

		out[o++] = alpha[v >> 18];
		out[o++] = alpha[(v >> 12) & 63];
		out[o++] = alpha[(v >> 6) & 63];
		out[o++] = alpha[v & 63];
	}
	if (i < n)
	{
		uint32_t	v = (uint32_t) in[i] << 16 | (i + 1 < n ? (uint32_t) in[i + 1] << 8 : 0);

		out[o++] = alpha[v >> 18];
		out[o++] = alpha[(v >> 12) & 63];
		if (i + 1 < n)
			out[o++] = alpha[(v >> 6) & 63];
		else if (pad)
			out[o++] = '=';
		if (pad)
			out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

size_t
b64url(const unsigned char *in, size_t n, char *out)
{
	return b64(in, n, out,
			   "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
			   false);
}

size_t
b64std(const unsigned char *in, size_t n, char *out)
{
	return b64(in, n, out,
			   "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
			   true);
}

/*
 * mint_token writes an HS256 JWT {"sub":sub,"exp":exp} signed with secret.
 * The user ids we mint are [A-Za-z0-9_] only, so no JSON escaping is needed.
 */
int
mint_token(const char *secret, const char *sub, long exp, char *out,
		   size_t outlen)
{
	static const char hdr[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	char		payload[256];
	char		signing[1024];
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	size_t		n;
	int			pl;

	pl = snprintf(payload, sizeof(payload), "{\"sub\":\"%s\",\"exp\":%ld}",
				  sub, exp);
	if (pl < 0 || (size_t) pl >= sizeof(payload))
		return -1;
	n = b64url((const unsigned char *) hdr, sizeof(hdr) - 1, signing);
	signing[n++] = '.';
	n += b64url((const unsigned char *) payload, (size_t) pl, signing + n);
	if (HMAC(EVP_sha256(), secret, (int) strlen(secret),
			 (const unsigned char *) signing, n, mac, &maclen) == NULL)
		return -1;
	if (n + 2 + (maclen * 4 + 2) / 3 + 1 > outlen)
		return -1;
	memcpy(out, signing, n);
	out[n++] = '.';
	b64url(mac, maclen, out + n);
	return 0;
}

/* --- histogram ----------------------------------------------------------- */

/*
 * Values below 128 have their own bucket; above, each power of two is split
 * into 64 equal sub-buckets (relative error under 1/64, like HDR with two
 * significant digits).  Values are nanoseconds, so the top (2^64) is never
 * reached.
 */
static int
hist_index(uint64_t v)
{
	int			msb,
				shift;

	if (v < 128)
		return (int) v;
	msb = 63 - __builtin_clzll(v);
	shift = msb - 6;
	return 128 + (msb - 7) * 64 + (int) ((v >> shift) - 64);
}

/* hist_value is the middle of bucket i. */
static uint64_t
hist_value(int i)
{
	int			k,
				msb;
	uint64_t	sub,
				width;

	if (i < 128)
		return (uint64_t) i;
	k = (i - 128) / 64;
	msb = k + 7;
	sub = (uint64_t) ((i - 128) % 64 + 64);
	width = (uint64_t) 1 << (msb - 6);
	return (sub << (msb - 6)) + width / 2;
}

void
hist_add(hist *h, uint64_t v)
{
	int			i = hist_index(v);

	if (i >= HIST_N)
		i = HIST_N - 1;
	h->counts[i]++;
	h->total++;
	h->sum += (double) v;
	if (v > h->max)
		h->max = v;
}

void
hist_merge(hist *into, const hist *from)
{
	for (int i = 0; i < HIST_N; i++)
		into->counts[i] += from->counts[i];
	into->total += from->total;
	into->sum += from->sum;
	if (from->max > into->max)
		into->max = from->max;
}

uint64_t
hist_pct(const hist *h, double pct)
{
	uint64_t	want,
				seen = 0;

	if (h->total == 0)
		return 0;
	want = (uint64_t) ((double) h->total * pct / 100.0 + 0.5);
	if (want < 1)
		want = 1;
	if (want > h->total)
		want = h->total;
	for (int i = 0; i < HIST_N; i++)
	{
		seen += h->counts[i];
		if (seen >= want)
		{
			uint64_t	v = hist_value(i);

			return v > h->max ? h->max : v;
		}
	}
	return h->max;
}

json_t	   *
hist_to_json(const hist *h)
{
	json_t	   *a = json_array();

	for (int i = 0; i < HIST_N; i++)
		if (h->counts[i])
			json_array_append_new(a, json_pack("[iI]", i, (json_int_t) h->counts[i]));
	return json_pack("{s:o,s:I,s:f}", "b", a, "max", (json_int_t) h->max,
					 "sum", h->sum);
}

void
hist_from_json(hist *h, json_t *j)
{
	json_t	   *a = json_object_get(j, "b");
	size_t		i;
	json_t	   *e;

	memset(h, 0, sizeof(*h));
	json_array_foreach(a, i, e)
	{
		int			idx = (int) json_integer_value(json_array_get(e, 0));
		uint64_t	n = (uint64_t) json_integer_value(json_array_get(e, 1));

		if (idx >= 0 && idx < HIST_N)
		{
			h->counts[idx] += n;
			h->total += n;
		}
	}
	h->max = (uint64_t) json_integer_value(json_object_get(j, "max"));
	h->sum = json_number_value(json_object_get(j, "sum"));
}

static double
ms(uint64_t ns)
{
	return (double) ns / 1e6;
}

json_t	   *
hist_summary(const hist *h)
{
	return json_pack("{s:I,s:f,s:f,s:f,s:f,s:f,s:f}",
					 "n", (json_int_t) h->total,
					 "mean_ms", h->total ? h->sum / (double) h->total / 1e6 : 0.0,
					 "p50_ms", ms(hist_pct(h, 50)),
					 "p90_ms", ms(hist_pct(h, 90)),
					 "p99_ms", ms(hist_pct(h, 99)),
					 "p999_ms", ms(hist_pct(h, 99.9)),
					 "max_ms", ms(h->max));
}

/*
 * hist_curve: the value in ms at every (100 / steps)th percentile, 0 to 100:
 * a distribution as a curve (the share of samples at or below each value)
 * small enough for one JSON line.
 */
json_t	   *
hist_curve(const hist *h, int steps)
{
	json_t	   *a = json_array();

	if (h->total == 0)
		return a;
	for (int i = 0; i <= steps; i++)
		json_array_append_new(a, json_real(ms(hist_pct(h, 100.0 * i / steps))));
	return a;
}

/* --- a proc's result as JSON ---------------------------------------------- */

#define U64_FIELDS(X) \
	X(conns_wanted) X(conns_ready) X(connect_failures) X(unexpected_closes) \
	X(http_errors) X(sent) X(acked) X(deliveries) X(bytes_in) X(sent_total) \
	X(acked_total) X(deliveries_total) X(unacked) X(send_errors) \
	X(error_frames) X(skipped_sends) X(streams) X(gaps) X(dups) \
	X(incomplete) X(lost_seqs) X(foreign) X(duplicate_acks) \
	X(sync_mismatch) X(storm_conns) X(storm_replayed) X(storm_failed) \
	X(storm_repeated) X(storm_resumed)

/* timestamps: the parent keeps the latest (max) of every proc */
#define MAX_FIELDS(X) \
	X(storm_down_ns) X(storm_up_ns) X(storm_ready_ns) X(storm_synced_ns) \
	X(storm_caught_ns) X(ramp_ns)

json_t	   *
result_to_json(const cl_result *r)
{
	json_t	   *j = json_object();

#define PUT(f) json_object_set_new(j, #f, json_integer((json_int_t) r->f));
	U64_FIELDS(PUT)
		MAX_FIELDS(PUT)
#undef PUT
		json_object_set_new(j, "window_s", json_real(r->window_s));
	json_object_set_new(j, "errors",
						r->errors ? json_incref(r->errors) : json_object());
	json_object_set_new(j, "lat", hist_to_json(&r->lat));
	json_object_set_new(j, "ack", hist_to_json(&r->ack));
	json_object_set_new(j, "connect", hist_to_json(&r->connect));
	json_object_set_new(j, "storm_ready_at", hist_to_json(&r->storm_ready_at));
	json_object_set_new(j, "storm_caught_at", hist_to_json(&r->storm_caught_at));
	return j;
}

void
result_merge_json(cl_result *into, json_t *j)
{
	hist		h;
	json_t	   *errs = json_object_get(j, "errors");
	const char *k;
	json_t	   *v;
	double		w;

#define ADD(f) into->f += (uint64_t) json_integer_value(json_object_get(j, #f));
	U64_FIELDS(ADD)
#undef ADD
#define MAX(f) { int64_t x = (int64_t) json_integer_value(json_object_get(j, #f)); \
		if (x > into->f) into->f = x; }
		MAX_FIELDS(MAX)
#undef MAX
		w = json_number_value(json_object_get(j, "window_s"));
	if (w > into->window_s)
		into->window_s = w;
	if (into->errors == NULL)
		into->errors = json_object();
	json_object_foreach(errs, k, v)
	{
		json_int_t	old = json_integer_value(json_object_get(into->errors, k));

		json_object_set_new(into->errors, k,
							json_integer(old + json_integer_value(v)));
	}
	hist_from_json(&h, json_object_get(j, "lat"));
	hist_merge(&into->lat, &h);
	hist_from_json(&h, json_object_get(j, "ack"));
	hist_merge(&into->ack, &h);
	hist_from_json(&h, json_object_get(j, "connect"));
	hist_merge(&into->connect, &h);
	hist_from_json(&h, json_object_get(j, "storm_ready_at"));
	hist_merge(&into->storm_ready_at, &h);
	hist_from_json(&h, json_object_get(j, "storm_caught_at"));
	hist_merge(&into->storm_caught_at, &h);
}

/* --- CPU accounting -------------------------------------------------------- */

/* add_tasks records every thread's schedstat (run, run-queue wait) of pid. */
static int
add_tasks(cpu_snap *s, long pid, bool gen)
{
	char		path[64];
	DIR		   *d;
	struct dirent *e;

	snprintf(path, sizeof(path), "/proc/%ld/task", pid);
	if ((d = opendir(path)) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL)
	{
		char		p[320];
		unsigned long long r = 0,
					w = 0;
		FILE	   *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "/proc/%ld/task/%s/schedstat", pid, e->d_name);
		if ((f = fopen(p, "r")) == NULL)
			continue;
		if (fscanf(f, "%llu %llu", &r, &w) == 2)
		{
			if (s->n_tasks == s->cap_tasks)
			{
				s->cap_tasks = s->cap_tasks ? s->cap_tasks * 2 : 256;
				s->tasks = realloc(s->tasks, (size_t) s->cap_tasks * sizeof(cpu_task));
				if (s->tasks == NULL)
					fatal("out of memory");
			}
			s->tasks[s->n_tasks].tid = atoi(e->d_name);
			s->tasks[s->n_tasks].gen = gen;
			s->tasks[s->n_tasks].run = (double) r / 1e9;
			s->tasks[s->n_tasks].wait = (double) w / 1e9;
			s->n_tasks++;
		}
		fclose(f);
	}
	closedir(d);
	return 1;
}

/*
 * cpu_take samples the processes in watch (a comma list of pids) and their
 * children, the procs (kids), and the machine's /proc/stat.
 */
void
cpu_take(cpu_snap *s, const char *watch, const int *kids, int nkids)
{
	FILE	   *f;

	memset(s, 0, sizeof(*s));
	if (watch)
	{
		char	   *copy = strdup(watch),
				   *tok,
				   *save = NULL;

		for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		{
			long		pid = atol(tok);
			char		p[96];
			long child;

			if (pid <= 0)
				continue;
			add_tasks(s, pid, false);
			snprintf(p, sizeof(p), "/proc/%ld/task/%ld/children", pid, pid);
			if ((f = fopen(p, "r")) == NULL)
				continue;
			while (fscanf(f, "%ld", &child) == 1)
				add_tasks(s, child, false);
			fclose(f);
		}
		free(copy);
	}
	for (int i = 0; i < nkids; i++)
		add_tasks(s, kids[i], true);
	if ((f = fopen("/proc/stat", "r")) != NULL)
	{
		unsigned long long v[8] = {0};

		if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu",
				   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8)
		{
			for (int i = 0; i < 8; i++)
				s->machine_total += (double) v[i];
			/* steal: the hypervisor ran someone else on our virtual CPUs */
			s->machine_steal = (double) v[7];
			s->machine_busy = s->machine_total - (double) v[3] - (double) v[4] -
				s->machine_steal;
		}
		fclose(f);
	}
}

/*
 * cpu_diff: per thread, the time since a (all of it for a thread born
 * since).  A thread that ended in between takes its time with it, instead
 * of subtracting its whole life.
 */
cpu_use
cpu_diff(const cpu_snap *a, const cpu_snap *b)
{
	cpu_use		u;

	memset(&u, 0, sizeof(u));
	for (int i = 0; i < b->n_tasks; i++)
	{
		const cpu_task *t = &b->tasks[i];
		double		run = t->run,
					wait = t->wait;

		for (int j = 0; j < a->n_tasks; j++)
			if (a->tasks[j].tid == t->tid)
			{
				run -= a->tasks[j].run;
				wait -= a->tasks[j].wait;
				break;
			}
		if (t->gen)
			u.gen_run += run;
		else
		{
			u.server_run += run;
			u.server_wait += wait;
			u.server_tasks++;
		}
	}
	if (b->machine_total > a->machine_total)
	{
		u.machine_busy = (b->machine_busy - a->machine_busy) /
			(b->machine_total - a->machine_total);
		u.machine_steal = (b->machine_steal - a->machine_steal) /
			(b->machine_total - a->machine_total);
	}
	return u;
}

void
cpu_free(cpu_snap *s)
{
	free(s->tasks);
	memset(s, 0, sizeof(*s));
}
