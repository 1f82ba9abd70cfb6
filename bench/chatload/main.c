/*
 * main.c
 *	  chatload's command line, the forked procs and the report.
 *
 *	  The parent holds no connection.  It forks the procs, waits until every
 *	  one has its connections ready ("R ..."), gives them a common start time
 *	  ("G t0"), and merges their results ("J {...}") into a human summary and
 *	  one JSON line (the last line of stdout).
 *
 *	  Exit status: 0 when every check passed, 1 when a check failed (a gap, a
 *	  lost message, an unacked send, a failed connection), 2 on a usage or
 *	  system error.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chatload.h"

static void
usage(FILE *f)
{
	fputs(
		  "usage: chatload [options]\n"
		  "  --port P[,P...]      server port(s) (required); see --spread\n"
		  "  --host ADDR          server address (127.0.0.1)\n"
		  "  --path PATH          upgrade path (/ws)\n"
		  "  --secret S           HS256 secret (or $CHATLOAD_SECRET)\n"
		  "  --prefix P           user ids are P<channel>_<member> (u)\n"
		  "  --channels C         group channels (10)\n"
		  "  --members M          members per channel, one connection each (10)\n"
		  "  --senders S          senders per channel (1)\n"
		  "  --rate R             total sends per second; 0 = as fast as acks\n"
		  "                       allow, --window in flight per sender (0)\n"
		  "  --window W           in-flight sends per sender (1; rate mode: 1000)\n"
		  "  --size B             content bytes per message (64)\n"
		  "  --duration S         measured seconds (10)\n"
		  "  --warmup S           seconds before measuring (1)\n"
		  "  --drain S            max seconds to wait for the last acks and\n"
		  "                       deliveries after sending stops (15)\n"
		  "  --idle               connect, then hold without sending\n"
		  "  --storm-at S         close the non-sender connections S seconds\n"
		  "                       after the start, reconnect and sync them\n"
		  "  --storm-count N      at most N of them (0 = all)\n"
		  "  --storm-down S       seconds they stay away (1)\n"
		  "  --storm-no-resume    reconnect as a 1.0 client (no ?resume=1)\n"
		  "  --procs N            processes (0 = as the fd limit needs)\n"
		  "  --per-addr N         connections per source address (20000)\n"
		  "  --src-base ADDR      first source address (127.0.0.1)\n"
		  "  --spread conn|channel  how connections pick a port (channel)\n"
		  "  --concurrency N      connects in flight per process (256)\n"
		  "  --retries N          connect retries (2)\n"
		  "  --ramp-timeout S     give up connecting after S seconds (300)\n"
		  "  --ready-file PATH    written once every connection is ready\n"
		  "  --token-ttl S        token lifetime (7200)\n"
		  "  --label NAME         name in the JSON line\n"
		  "  --watch-pids P,...   server processes (and their children) whose CPU\n"
		  "                       time is measured over the window\n"
		  "  --json-full          parse every frame with jansson\n"
		  "  --inject-drop N      (testing) ignore every Nth message frame\n"
		  "  --inject-dup N       (testing) take every Nth message frame twice\n"
		  "  --quiet              only the JSON line\n"
		  "  --print-sql chat|peer  print the SQL creating the channels, exit\n",
		  f);
}

static void
parse_ports(cl_config *cfg, const char *s)
{
	char	   *copy = strdup(s),
			   *tok,
			   *save = NULL;

	cfg->n_ports = 0;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
	{
		if (cfg->n_ports == MAX_PORTS)
			fatal("at most %d ports", MAX_PORTS);
		cfg->ports[cfg->n_ports] = atoi(tok);
		if (cfg->ports[cfg->n_ports] <= 0 || cfg->ports[cfg->n_ports] > 65535)
			fatal("bad port \"%s\"", tok);
		cfg->n_ports++;
	}
	free(copy);
}

static void
print_sql(const cl_config *cfg, const char *kind)
{
	const char *p = cfg->prefix;

	/*
	 * User ids are <prefix><channel>_<member>: a prefix ending in a digit
	 * would make prefix "a1" channel 12 the same user as prefix "a11" channel
	 * 2.
	 */
	if (p[0] && p[strlen(p) - 1] >= '0' && p[strlen(p) - 1] <= '9')
		fatal("--prefix must not end with a digit");
	if (strcmp(kind, "chat") == 0)
		printf("SELECT count(chat_create_channel('group', '%s' || c,\n"
			   "    ARRAY(SELECT '%s' || c || '_' || k FROM generate_series(0, %d) k)))\n"
			   "FROM generate_series(0, %d) c;\n",
			   p, p, cfg->members - 1, cfg->channels - 1);
	else if (strcmp(kind, "peer") == 0)
		printf("INSERT INTO channels (id, type, name)\n"
			   "SELECT md5('%s' || c)::uuid, 'group', '%s' || c FROM generate_series(0, %d) c;\n"
			   "INSERT INTO channel_members (channel_id, user_id)\n"
			   "SELECT md5('%s' || c)::uuid, '%s' || c || '_' || k\n"
			   "FROM generate_series(0, %d) c, generate_series(0, %d) k;\n",
			   p, p, cfg->channels - 1, p, p, cfg->channels - 1, cfg->members - 1);
	else
		fatal("--print-sql takes chat or peer");
}

/* raise_nofile raises the fd limit as far as allowed; returns the soft limit. */
static long
raise_nofile(long want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 1024;
	if ((long) rl.rlim_max < want)
	{
		struct rlimit more = {(rlim_t) want, (rlim_t) want};

		/* root may raise the hard limit (up to fs.nr_open) */
		if (setrlimit(RLIMIT_NOFILE, &more) == 0)
			return want;
	}
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	getrlimit(RLIMIT_NOFILE, &rl);
	return (long) rl.rlim_cur;
}

typedef struct child
{
	pid_t		pid;
	int			to;				/* parent -> child */
	int			from;			/* child -> parent */
	char	   *buf;
	size_t		len;
	size_t		cap;
	bool		ready;
	bool		done;
	unsigned long long n_ready;
	unsigned long long n_failed;
} child;

static void
write_all(int fd, const char *s, size_t n)
{
	while (n > 0)
	{
		ssize_t		w = write(fd, s, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			fatal("write to a proc: %s", strerror(errno));
		s += w;
		n -= (size_t) w;
	}
}

/* child_line handles one line from a proc. */
static void
child_line(child *ch, char *line, cl_result *total)
{
	if (line[0] == 'R')
	{
		sscanf(line, "R %llu %llu", &ch->n_ready, &ch->n_failed);
		ch->ready = true;
	}
	else if (line[0] == 'J' && line[1] == ' ')
	{
		json_error_t err;
		json_t	   *j = json_loads(line + 2, 0, &err);

		if (j == NULL)
			fatal("bad result from proc %d: %s", (int) ch->pid, err.text);
		result_merge_json(total, j);
		json_decref(j);
		ch->done = true;
	}
}

static void
read_child(child *ch, cl_result *total)
{
	char	   *nl;
	ssize_t		r;

	if (ch->cap - ch->len < 65536)
	{
		ch->cap = ch->cap ? ch->cap * 2 : 131072;
		ch->buf = realloc(ch->buf, ch->cap);
		if (ch->buf == NULL)
			fatal("out of memory");
	}
	r = read(ch->from, ch->buf + ch->len, ch->cap - ch->len - 1);
	if (r < 0 && errno == EINTR)
		return;
	if (r <= 0)
	{
		if (!ch->done)
			fatal("proc %d ended without a result", (int) ch->pid);
		close(ch->from);
		ch->from = -1;
		return;
	}
	ch->len += (size_t) r;
	ch->buf[ch->len] = '\0';
	while ((nl = memchr(ch->buf, '\n', ch->len)) != NULL)
	{
		size_t		used = (size_t) (nl + 1 - ch->buf);

		*nl = '\0';
		child_line(ch, ch->buf, total);
		memmove(ch->buf, nl + 1, ch->len - used);
		ch->len -= used;
		ch->buf[ch->len] = '\0';
	}
}

static double
per_s(uint64_t n, double s)
{
	return s > 0 ? (double) n / s : 0;
}

static void
print_hist(const char *name, const hist *h)
{
	if (h->total == 0)
	{
		printf("  %-22s -\n", name);
		return;
	}
	printf("  %-22s p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f ms  (n=%llu)\n",
		   name, hist_pct(h, 50) / 1e6, hist_pct(h, 90) / 1e6,
		   hist_pct(h, 99) / 1e6, hist_pct(h, 99.9) / 1e6, h->max / 1e6,
		   (unsigned long long) h->total);
}

static double
since_ms(int64_t t, int64_t base)
{
	return t > 0 && base > 0 ? (double) (t - base) / 1e6 : -1;
}

int
main(int argc, char **argv)
{
	cl_config	cfg;
	const char *sql = NULL;
	const char *ports = NULL;
	const char *watch = NULL;
	cpu_snap	cpu0,
				cpu1;
	bool		cpu0_taken = false,
				cpu1_taken = false;
	int64_t		t_win0 = 0,
				t_win1 = 0;
	bool		window_set = false;
	long		total_conns,
				fdlim,
				need_procs;
	int			nprocs;
	child	   *kids;
	cl_result	total;
	json_t	   *out;
	bool		ok;
	char	   *line;
	int			opt;
	enum
	{
		OPT_PORT = 256, OPT_HOST, OPT_PATH, OPT_SECRET, OPT_PREFIX, OPT_CHANNELS,
		OPT_MEMBERS, OPT_SENDERS, OPT_RATE, OPT_WINDOW, OPT_SIZE, OPT_DURATION,
		OPT_WARMUP, OPT_DRAIN, OPT_IDLE, OPT_STORM_AT, OPT_STORM_COUNT, OPT_STORM_DOWN, OPT_STORM_NO_RESUME,
		OPT_PROCS, OPT_PER_ADDR, OPT_SRC_BASE, OPT_SPREAD, OPT_CONC, OPT_RETRIES,
		OPT_RAMP, OPT_READY_FILE, OPT_TTL, OPT_LABEL, OPT_WATCH, OPT_INJ_DROP, OPT_INJ_DUP, OPT_JSON_FULL, OPT_QUIET, OPT_SQL,
		OPT_HELP
	};
	static const struct option opts[] = {
		{"port", required_argument, NULL, OPT_PORT},
		{"host", required_argument, NULL, OPT_HOST},
		{"path", required_argument, NULL, OPT_PATH},
		{"secret", required_argument, NULL, OPT_SECRET},
		{"prefix", required_argument, NULL, OPT_PREFIX},
		{"channels", required_argument, NULL, OPT_CHANNELS},
		{"members", required_argument, NULL, OPT_MEMBERS},
		{"senders", required_argument, NULL, OPT_SENDERS},
		{"rate", required_argument, NULL, OPT_RATE},
		{"window", required_argument, NULL, OPT_WINDOW},
		{"size", required_argument, NULL, OPT_SIZE},
		{"duration", required_argument, NULL, OPT_DURATION},
		{"warmup", required_argument, NULL, OPT_WARMUP},
		{"drain", required_argument, NULL, OPT_DRAIN},
		{"idle", no_argument, NULL, OPT_IDLE},
		{"storm-at", required_argument, NULL, OPT_STORM_AT},
		{"storm-count", required_argument, NULL, OPT_STORM_COUNT},
		{"storm-down", required_argument, NULL, OPT_STORM_DOWN},
		{"storm-no-resume", no_argument, NULL, OPT_STORM_NO_RESUME},
		{"procs", required_argument, NULL, OPT_PROCS},
		{"per-addr", required_argument, NULL, OPT_PER_ADDR},
		{"src-base", required_argument, NULL, OPT_SRC_BASE},
		{"spread", required_argument, NULL, OPT_SPREAD},
		{"concurrency", required_argument, NULL, OPT_CONC},
		{"retries", required_argument, NULL, OPT_RETRIES},
		{"ramp-timeout", required_argument, NULL, OPT_RAMP},
		{"ready-file", required_argument, NULL, OPT_READY_FILE},
		{"token-ttl", required_argument, NULL, OPT_TTL},
		{"label", required_argument, NULL, OPT_LABEL},
		{"watch-pids", required_argument, NULL, OPT_WATCH},
		{"json-full", no_argument, NULL, OPT_JSON_FULL},
		{"inject-drop", required_argument, NULL, OPT_INJ_DROP},
		{"inject-dup", required_argument, NULL, OPT_INJ_DUP},
		{"quiet", no_argument, NULL, OPT_QUIET},
		{"print-sql", required_argument, NULL, OPT_SQL},
		{"help", no_argument, NULL, OPT_HELP},
		{NULL, 0, NULL, 0}
	};

	memset(&cfg, 0, sizeof(cfg));
	memset(&cpu0, 0, sizeof(cpu0));
	memset(&cpu1, 0, sizeof(cpu1));
	snprintf(cfg.host, sizeof(cfg.host), "127.0.0.1");
	snprintf(cfg.path, sizeof(cfg.path), "/ws");
	snprintf(cfg.prefix, sizeof(cfg.prefix), "u");
	snprintf(cfg.src_base, sizeof(cfg.src_base), "127.0.0.1");
	if (getenv("CHATLOAD_SECRET"))
		snprintf(cfg.secret, sizeof(cfg.secret), "%s", getenv("CHATLOAD_SECRET"));
	cfg.channels = 10;
	cfg.members = 10;
	cfg.senders = 1;
	cfg.window = 1;
	cfg.size = 64;
	cfg.duration = 10;
	cfg.warmup = 1;
	cfg.drain = 15;
	cfg.storm_at = -1;
	cfg.storm_down = 1;
	cfg.per_addr = 20000;
	cfg.concurrency = 256;
	cfg.connect_retries = 2;
	cfg.ramp_timeout = 300;
	cfg.token_ttl = 7200;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1)
	{
		switch (opt)
		{
			case OPT_PORT:
				ports = optarg;
				break;
			case OPT_HOST:
				snprintf(cfg.host, sizeof(cfg.host), "%s", optarg);
				break;
			case OPT_PATH:
				snprintf(cfg.path, sizeof(cfg.path), "%s", optarg);
				break;
			case OPT_SECRET:
				snprintf(cfg.secret, sizeof(cfg.secret), "%s", optarg);
				break;
			case OPT_PREFIX:
				snprintf(cfg.prefix, sizeof(cfg.prefix), "%s", optarg);
				break;
			case OPT_CHANNELS:
				cfg.channels = atoi(optarg);
				break;
			case OPT_MEMBERS:
				cfg.members = atoi(optarg);
				break;
			case OPT_SENDERS:
				cfg.senders = atoi(optarg);
				break;
			case OPT_RATE:
				cfg.rate = atof(optarg);
				break;
			case OPT_WINDOW:
				cfg.window = atoi(optarg);
				window_set = true;
				break;
			case OPT_SIZE:
				cfg.size = atoi(optarg);
				break;
			case OPT_DURATION:
				cfg.duration = atof(optarg);
				break;
			case OPT_WARMUP:
				cfg.warmup = atof(optarg);
				break;
			case OPT_DRAIN:
				cfg.drain = atof(optarg);
				break;
			case OPT_IDLE:
				cfg.idle = true;
				break;
			case OPT_STORM_AT:
				cfg.storm_at = atof(optarg);
				break;
			case OPT_STORM_COUNT:
				cfg.storm_count = atoi(optarg);
				break;
			case OPT_STORM_DOWN:
				cfg.storm_down = atof(optarg);
				break;
			case OPT_STORM_NO_RESUME:
				cfg.storm_no_resume = true;
				break;
			case OPT_PROCS:
				cfg.procs = atoi(optarg);
				break;
			case OPT_PER_ADDR:
				cfg.per_addr = atoi(optarg);
				break;
			case OPT_SRC_BASE:
				snprintf(cfg.src_base, sizeof(cfg.src_base), "%s", optarg);
				break;
			case OPT_SPREAD:
				if (strcmp(optarg, "conn") == 0)
					cfg.spread_by_conn = true;
				else if (strcmp(optarg, "channel") != 0)
					fatal("--spread takes conn or channel");
				break;
			case OPT_CONC:
				cfg.concurrency = atoi(optarg);
				break;
			case OPT_RETRIES:
				cfg.connect_retries = atoi(optarg);
				break;
			case OPT_RAMP:
				cfg.ramp_timeout = atof(optarg);
				break;
			case OPT_READY_FILE:
				snprintf(cfg.ready_file, sizeof(cfg.ready_file), "%s", optarg);
				break;
			case OPT_TTL:
				cfg.token_ttl = atoi(optarg);
				break;
			case OPT_LABEL:
				snprintf(cfg.label, sizeof(cfg.label), "%s", optarg);
				break;
			case OPT_WATCH:
				watch = optarg;
				break;
			case OPT_JSON_FULL:
				cfg.json_full = true;
				break;
			case OPT_INJ_DROP:
				cfg.inject_drop = atoi(optarg);
				break;
			case OPT_INJ_DUP:
				cfg.inject_dup = atoi(optarg);
				break;
			case OPT_QUIET:
				cfg.quiet = true;
				break;
			case OPT_SQL:
				sql = optarg;
				break;
			case OPT_HELP:
			case 'h':
				usage(stdout);
				return 0;
			default:
				usage(stderr);
				return 2;
		}
	}
	if (optind < argc)
	{
		usage(stderr);
		return 2;
	}
	for (const char *p = cfg.prefix; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			  (*p >= '0' && *p <= '9') || *p == '_'))
			fatal("--prefix may hold only letters, digits and _");
	if (cfg.channels < 1 || cfg.members < 1 || cfg.members > 100000)
		fatal("--channels and --members must be positive");
	if (sql)
	{
		print_sql(&cfg, sql);
		return 0;
	}
	if (cfg.prefix[0] && cfg.prefix[strlen(cfg.prefix) - 1] >= '0' &&
		cfg.prefix[strlen(cfg.prefix) - 1] <= '9')
		fatal("--prefix must not end with a digit (prefix a1 channel 12 would be prefix a11 channel 2)");
	if (ports == NULL)
		fatal("--port is required (try --help)");
	parse_ports(&cfg, ports);
	if (cfg.secret[0] == '\0')
		fatal("--secret (or CHATLOAD_SECRET) is required");
	if (cfg.senders < 0 || cfg.senders > cfg.members)
		fatal("--senders must be between 0 and --members");
	if (cfg.size < 0 || cfg.size > 1000000)
		fatal("--size must be between 0 and 1000000");
	if (cfg.rate > 0 && !window_set)
		cfg.window = 1000;
	if (cfg.window < 1 || cfg.per_addr < 1 || cfg.concurrency < 1 ||
		cfg.duration <= 0)
		fatal("--window, --per-addr, --concurrency and --duration must be positive");
	if (cfg.idle)
		cfg.senders = 0;
	if (cfg.storm_at >= 0 && cfg.storm_at + cfg.storm_down >= cfg.warmup + cfg.duration)
		fatal("the storm must be over before the run ends (--storm-at + --storm-down < --warmup + --duration)");

	/* descriptors: every connection needs one, plus a few per proc */
	total_conns = (long) cfg.channels * cfg.members;
	fdlim = raise_nofile(total_conns + 64);
	need_procs = (total_conns + (fdlim - 64) - 1) / (fdlim - 64);
	nprocs = cfg.procs > 0 ? cfg.procs : 1;
	if (nprocs < need_procs)
		nprocs = (int) need_procs;
	if (nprocs > cfg.channels)
		nprocs = cfg.channels;
	if ((total_conns + nprocs - 1) / nprocs > fdlim - 64)
		fatal("%ld connections need more processes than channels allow "
			  "(fd limit %ld)", total_conns, fdlim);
	signal(SIGPIPE, SIG_IGN);
	fflush(stdout);

	kids = calloc((size_t) nprocs, sizeof(child));
	if (kids == NULL)
		fatal("out of memory");
	for (int i = 0; i < nprocs; i++)
	{
		int			down[2],
					up[2];
		pid_t		pid;

		if (pipe2(down, O_CLOEXEC) != 0 || pipe2(up, O_CLOEXEC) != 0)
			fatal("pipe: %s", strerror(errno));
		pid = fork();
		if (pid < 0)
			fatal("fork: %s", strerror(errno));
		if (pid == 0)
		{
			for (int j = 0; j < i; j++)
			{
				close(kids[j].to);
				close(kids[j].from);
			}
			close(down[1]);
			close(up[0]);
			exit(proc_main(&cfg, i, nprocs, down[0], up[1]));
		}
		close(down[0]);
		close(up[1]);
		kids[i].pid = pid;
		kids[i].to = down[1];
		kids[i].from = up[0];
	}

	memset(&total, 0, sizeof(total));
	total.errors = json_object();
	/* wait for every proc's R, start them together, collect every J */
	{
		bool		started = false;
		int			poll_ms = 1000;
		int		   *pids = calloc((size_t) nprocs, sizeof(int));

		if (pids == NULL)
			fatal("out of memory");
		for (int i = 0; i < nprocs; i++)
			pids[i] = (int) kids[i].pid;

		for (;;)
		{
			struct pollfd *pfd = calloc((size_t) nprocs, sizeof(struct pollfd));
			int			n = 0,
						all_ready = 1,
						all_done = 1;

			for (int i = 0; i < nprocs; i++)
			{
				all_ready &= kids[i].ready;
				all_done &= kids[i].done;
			}
			if (all_done)
			{
				free(pfd);
				break;
			}
			if (all_ready && !started)
			{
				char		go[64];
				int			len = snprintf(go, sizeof(go), "G %lld\n",
										   (long long) (mono_ns() + 200000000LL));

				if (cfg.ready_file[0])
				{
					FILE	   *f = fopen(cfg.ready_file, "w");

					if (f)
					{
						unsigned long long r = 0;

						for (int i = 0; i < nprocs; i++)
							r += kids[i].n_ready;
						fprintf(f, "%llu\n", r);
						fclose(f);
					}
				}
				for (int i = 0; i < nprocs; i++)
					write_all(kids[i].to, go, (size_t) len);
				started = true;
				{
					long long	t0 = 0;

					sscanf(go, "G %lld", &t0);
					t_win0 = (int64_t) t0 + (int64_t) (cfg.warmup * 1e9);
					t_win1 = t_win0 + (int64_t) (cfg.duration * 1e9);
				}
			}
			if (started)
			{
				int64_t		now = mono_ns();

				if (!cpu0_taken && now >= t_win0)
				{
					cpu_take(&cpu0, watch, pids, nprocs);
					cpu0_taken = true;
				}
				if (!cpu1_taken && now >= t_win1)
				{
					cpu_take(&cpu1, watch, pids, nprocs);
					cpu1_taken = true;
				}
				if (!cpu1_taken)
				{
					int64_t		next = cpu0_taken ? t_win1 : t_win0;

					poll_ms = (int) ((next - now) / 1000000) + 1;
					if (poll_ms > 1000)
						poll_ms = 1000;
				}
				else
					poll_ms = 1000;
			}
			for (int i = 0; i < nprocs; i++)
				if (kids[i].from >= 0)
				{
					pfd[n].fd = kids[i].from;
					pfd[n].events = POLLIN;
					n++;
				}
			if (poll(pfd, (nfds_t) n, poll_ms) < 0 && errno != EINTR)
				fatal("poll: %s", strerror(errno));
			for (int i = 0, p = 0; i < nprocs; i++)
			{
				if (kids[i].from < 0)
					continue;
				if (pfd[p].revents)
					read_child(&kids[i], &total);
				p++;
			}
			free(pfd);
		}
		free(pids);
	}
	for (int i = 0; i < nprocs; i++)
	{
		int			st;

		waitpid(kids[i].pid, &st, 0);
		if (kids[i].from >= 0)
			close(kids[i].from);
		close(kids[i].to);
		free(kids[i].buf);
	}
	free(kids);

	ok = total.connect_failures == 0 && total.unexpected_closes == 0 &&
		total.gaps == 0 && total.dups == 0 && total.incomplete == 0 &&
		total.unacked == 0 && total.send_errors == 0 && total.lost_seqs == 0 &&
		total.foreign == 0 && total.sync_mismatch == 0 &&
		total.duplicate_acks == 0 && total.storm_failed == 0 &&
	/* a server that resumes must repeat nothing; a 1.0 one may */
		(total.storm_resumed == 0 || total.storm_repeated == 0) &&
		total.http_errors == 0 && total.conns_ready == (uint64_t) total_conns;

	if (!cfg.quiet)
	{
		printf("chatload %s: %ld connections (%llu ready, %llu failed, %llu still connecting "
			   "at the ramp timeout) in %d procs; "
			   "%d channels x %d members, %d senders each\n",
			   cfg.label, total_conns, (unsigned long long) total.conns_ready,
			   (unsigned long long) total.connect_failures,
			   (unsigned long long) (total_conns - (long) total.conns_ready -
									 (long) total.connect_failures), nprocs,
			   cfg.channels, cfg.members, cfg.senders);
		printf("  ramp %.2f s; ", total.ramp_ns / 1e9);
		if (cfg.idle)
			printf("held idle for %.0f s\n", cfg.warmup + cfg.duration);
		else if (cfg.rate > 0)
			printf("rate %.0f sends/s (window cap %d), %d-byte content, %.0f s measured\n",
				   cfg.rate, cfg.window, cfg.size, cfg.duration);
		else
			printf("window %d per sender, %d-byte content, %.0f s measured\n",
				   cfg.window, cfg.size, cfg.duration);
		if (!cfg.idle)
		{
			printf("  acked sends   %10.0f /s   (sent %llu, acked %llu in the window; "
				   "%llu errors, %llu unacked, %llu skipped)\n",
				   per_s(total.acked, total.window_s),
				   (unsigned long long) total.sent, (unsigned long long) total.acked,
				   (unsigned long long) total.send_errors,
				   (unsigned long long) total.unacked,
				   (unsigned long long) total.skipped_sends);
			printf("  deliveries    %10.0f /s   (%llu in the window, %llu in all)\n",
				   per_s(total.deliveries, total.window_s),
				   (unsigned long long) total.deliveries,
				   (unsigned long long) total.deliveries_total);
			print_hist("send->receive latency", &total.lat);
			print_hist("send->ack latency", &total.ack);
		}
		print_hist("connect->ready", &total.connect);
		if (cfg.storm_at >= 0)
			printf("  storm: %llu connections closed; all ready after %.0f ms, "
				   "all synced after %.0f ms, all caught up after %.0f ms; "
				   "%llu messages replayed by sync, %llu repeated frames "
				   "(%llu of the reconnects resumed), %llu failed to reconnect\n",
				   (unsigned long long) total.storm_conns,
				   since_ms(total.storm_ready_ns, total.storm_up_ns),
				   since_ms(total.storm_synced_ns, total.storm_up_ns),
				   since_ms(total.storm_caught_ns, total.storm_up_ns),
				   (unsigned long long) total.storm_replayed,
				   (unsigned long long) total.storm_repeated,
				   (unsigned long long) total.storm_resumed,
				   (unsigned long long) total.storm_failed);
		if (cpu0_taken && cpu1_taken)
		{
			double		win = (t_win1 - t_win0) / 1e9;
			cpu_use		u = cpu_diff(&cpu0, &cpu1);

			if (watch)
				printf("  server CPU    %.2f s in the %.0f s window (%.0f%% of a core), "
					   "run-queue wait %.2f s; %.0f us per acked send, %.2f us per delivery\n",
					   u.server_run, win, 100 * u.server_run / win, u.server_wait,
					   total.acked ? 1e6 * u.server_run / (double) total.acked : 0,
					   total.deliveries ? 1e6 * u.server_run / (double) total.deliveries : 0);
			printf("  generator CPU %.2f s; machine busy %.0f%% of all CPUs, "
				   "stolen by the hypervisor %.0f%%\n",
				   u.gen_run, 100 * u.machine_busy, 100 * u.machine_steal);
		}
		printf("  streams: %llu checked: %llu gaps, %llu dups/out of order, %llu incomplete, "
			   "%llu seqs lost, %llu foreign -> %s\n",
			   (unsigned long long) total.streams, (unsigned long long) total.gaps,
			   (unsigned long long) total.dups, (unsigned long long) total.incomplete,
			   (unsigned long long) total.lost_seqs, (unsigned long long) total.foreign,
			   ok ? "OK" : "FAILED");
		if (json_object_size(total.errors) > 0)
		{
			char	   *e = json_dumps(total.errors, JSON_COMPACT | JSON_SORT_KEYS);

			printf("  errors: %s\n", e);
			free(e);
		}
	}

	out = json_object();
	json_object_set_new(out, "label", json_string(cfg.label));
	json_object_set_new(out, "ok", json_boolean(ok));
	json_object_set_new(out, "procs", json_integer(nprocs));
	json_object_set_new(out, "ports", json_integer(cfg.n_ports));
	json_object_set_new(out, "channels", json_integer(cfg.channels));
	json_object_set_new(out, "members", json_integer(cfg.members));
	json_object_set_new(out, "senders", json_integer(cfg.senders));
	json_object_set_new(out, "rate", json_real(cfg.rate));
	json_object_set_new(out, "window", json_integer(cfg.window));
	json_object_set_new(out, "size", json_integer(cfg.size));
	json_object_set_new(out, "duration", json_real(cfg.duration));
	json_object_set_new(out, "conns", json_integer(total_conns));
	json_object_set_new(out, "conns_ready", json_integer((json_int_t) total.conns_ready));
	json_object_set_new(out, "connect_failures", json_integer((json_int_t) total.connect_failures));
	json_object_set_new(out, "ramp_s", json_real(total.ramp_ns / 1e9));
	json_object_set_new(out, "ack_rate", json_real(per_s(total.acked, total.window_s)));
	json_object_set_new(out, "delivery_rate", json_real(per_s(total.deliveries, total.window_s)));
	json_object_set_new(out, "lat", hist_summary(&total.lat));
	json_object_set_new(out, "ack", hist_summary(&total.ack));
	json_object_set_new(out, "connect", hist_summary(&total.connect));
#define PUTU(f) json_object_set_new(out, #f, json_integer((json_int_t) total.f));
	PUTU(sent) PUTU(acked) PUTU(deliveries) PUTU(sent_total) PUTU(acked_total)
		PUTU(deliveries_total) PUTU(unacked) PUTU(send_errors) PUTU(error_frames)
		PUTU(skipped_sends) PUTU(unexpected_closes) PUTU(http_errors)
		PUTU(streams) PUTU(gaps) PUTU(dups) PUTU(incomplete) PUTU(lost_seqs)
		PUTU(foreign) PUTU(duplicate_acks) PUTU(sync_mismatch) PUTU(bytes_in)
#undef PUTU
		if (cpu0_taken && cpu1_taken)
	{
		double		win = (t_win1 - t_win0) / 1e9;
		cpu_use		u = cpu_diff(&cpu0, &cpu1);

		json_object_set_new(out, "cpu",
							json_pack("{s:f,s:f,s:i,s:f,s:f,s:f,s:f,s:f,s:f}",
									  "server_s", u.server_run,
									  "server_wait_s", u.server_wait,
									  "server_tasks", u.server_tasks,
									  "server_cores", win > 0 ? u.server_run / win : 0.0,
									  "server_us_per_send", total.acked ? 1e6 * u.server_run / (double) total.acked : 0.0,
									  "server_us_per_delivery", total.deliveries ? 1e6 * u.server_run / (double) total.deliveries : 0.0,
									  "gen_s", u.gen_run,
									  "machine_busy", u.machine_busy,
									  "machine_steal", u.machine_steal));
	}
	cpu_free(&cpu0);
	cpu_free(&cpu1);
	if (cfg.storm_at >= 0)
		json_object_set_new(out, "storm",
							json_pack("{s:I,s:f,s:f,s:f,s:I,s:I,s:I,s:I}",
									  "conns", (json_int_t) total.storm_conns,
									  "ready_ms", since_ms(total.storm_ready_ns, total.storm_up_ns),
									  "synced_ms", since_ms(total.storm_synced_ns, total.storm_up_ns),
									  "caught_up_ms", since_ms(total.storm_caught_ns, total.storm_up_ns),
									  "replayed", (json_int_t) total.storm_replayed,
									  "repeated", (json_int_t) total.storm_repeated,
									  "resumed", (json_int_t) total.storm_resumed,
									  "failed", (json_int_t) total.storm_failed));
	if (cfg.storm_at >= 0)
	{
		json_t	   *st = json_object_get(out, "storm");

		/*
		 * the catch-up over time: ms after reconnecting started by which 0,
		 * 2, 4 ... 100 % of the dropped connections were ready again, and had
		 * caught up with their channel's head
		 */
		json_object_set_new(st, "ready_curve_ms", hist_curve(&total.storm_ready_at, 50));
		json_object_set_new(st, "caught_up_curve_ms", hist_curve(&total.storm_caught_at, 50));
	}
	json_object_set_new(out, "errors", total.errors);
	line = json_dumps(out, JSON_COMPACT | JSON_REAL_PRECISION(6));
	printf("%s\n", line);
	free(line);
	json_decref(out);
	return ok ? 0 : 1;
}
