/*
 * chatload.h
 *	  A WebSocket load generator for the chat protocol (docs/protocol.md)
 *	  that also checks what it measures: every receiver's per-channel stream
 *	  must be complete, gap-free and in seq order.
 *
 *	  The parent process forks workers ("procs"); each owns a contiguous range
 *	  of channels with all their members, so it can check its streams on its
 *	  own.  Each proc is one epoll loop over non-blocking sockets with a wslay
 *	  client context per connection.
 */
#ifndef CHATLOAD_H
#define CHATLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* --- settings (command line) ------------------------------------------ */

#define MAX_PORTS 8

typedef struct cl_config
{
	char		host[64];
	int			ports[MAX_PORTS];
	int			n_ports;
	bool		spread_by_conn; /* ports: by connection, not by channel */
	char		path[128];
	char		secret[512];
	char		prefix[64];		/* user ids: <prefix><channel>_<member> */
	char		label[128];
	int			channels;
	int			members;
	int			senders;		/* per channel: members 0..senders-1 */
	double		rate;			/* total sends/s; 0 = window mode */
	int			window;			/* in-flight sends per sender */
	int			size;			/* content bytes */
	double		duration;		/* measured seconds */
	double		warmup;
	double		drain;			/* max seconds to wait for stragglers */
	int			procs;			/* 0 = auto */
	int			per_addr;		/* connections per source address */
	char		src_base[32];	/* first source address, 127.0.0.x */
	int			concurrency;	/* connects in flight per proc */
	double		ramp_timeout;
	int			connect_retries;
	bool		idle;
	double		storm_at;		/* seconds after start; < 0 = no storm */
	int			storm_count;	/* 0 = every non-sender */
	double		storm_down;
	bool		storm_no_resume;	/* reconnect without ?resume=1 (1.0) */
	char		ready_file[512];
	int			token_ttl;
	bool		json_full;		/* parse every frame with jansson */
	int			inject_drop;	/* testing: ignore every Nth message frame */
	int			inject_dup;		/* testing: apply every Nth message frame
								 * twice */
	bool		quiet;
} cl_config;

/* --- histogram: HDR-style, log buckets with 64 linear sub-buckets ------- */

#define HIST_N (128 + 58 * 64)

typedef struct hist
{
	uint64_t	counts[HIST_N];
	uint64_t	total;
	uint64_t	max;
	double		sum;
} hist;

extern void hist_add(hist *h, uint64_t v);
extern void hist_merge(hist *into, const hist *from);
extern uint64_t hist_pct(const hist *h, double pct);
extern json_t *hist_to_json(const hist *h); /* sparse [[i,n],...] */
extern void hist_from_json(hist *h, json_t *j);
extern json_t *hist_summary(const hist *h); /* {p50,p99,...} in ms */
extern json_t *hist_curve(const hist *h, int steps);	/* ms at 0..100 % */

/* --- results of one proc, merged by the parent ------------------------- */

typedef struct cl_result
{
	/* connections */
	uint64_t	conns_wanted;
	uint64_t	conns_ready;
	uint64_t	connect_failures;
	uint64_t	unexpected_closes;
	uint64_t	http_errors;	/* non-101 answers */
	/* traffic in the measured window */
	uint64_t	sent;
	uint64_t	acked;
	uint64_t	deliveries;
	uint64_t	bytes_in;
	/* whole run */
	uint64_t	sent_total;
	uint64_t	acked_total;
	uint64_t	deliveries_total;
	uint64_t	unacked;		/* sent, never acked (nor error) */
	uint64_t	send_errors;	/* error frames answering a send */
	uint64_t	error_frames;
	uint64_t	skipped_sends;	/* rate mode: sender's window full */
	/* stream checks */
	uint64_t	streams;		/* (connection, channel) pairs checked */
	uint64_t	gaps;			/* a seq skipped ahead */
	uint64_t	dups;			/* a seq at or below the last one */
	uint64_t	incomplete;		/* stream short of the channel's last seq */
	uint64_t	lost_seqs;		/* channel seqs never acked by us */
	uint64_t	foreign;		/* frames of an unexpected channel */
	uint64_t	duplicate_acks;
	uint64_t	sync_mismatch;
	/* reconnect storm */
	uint64_t	storm_conns;
	uint64_t	storm_replayed; /* messages received through sync */
	uint64_t	storm_repeated; /* message frames at or below the position the
								 * reconnect resumed from */
	uint64_t	storm_resumed;	/* reconnects whose ready said resume */
	uint64_t	storm_failed;
	int64_t		storm_down_ns;	/* when the connections were closed */
	int64_t		storm_up_ns;	/* when reconnecting started */
	int64_t		storm_ready_ns; /* last storm connection ready */
	int64_t		storm_synced_ns;	/* last synced (hasMore false) */
	int64_t		storm_caught_ns;	/* last one at the head of its channel */
	/* timing */
	int64_t		ramp_ns;		/* time to get every connection ready */
	double		window_s;		/* length of the measured window */
	json_t	   *errors;			/* {"code": n} */
	hist		lat;			/* send -> receive, ns */
	hist		ack;			/* send -> ack, ns */
	hist		connect;		/* connect -> ready, ns */

	/*
	 * reconnect storm: when each dropped connection was ready again and
	 * caught up, ns after reconnecting started (the catch-up over time)
	 */
	hist		storm_ready_at;
	hist		storm_caught_at;
} cl_result;

extern json_t *result_to_json(const cl_result *r);
extern void result_merge_json(cl_result *into, json_t *j);

/* --- helpers ------------------------------------------------------------ */

extern int64_t mono_ns(void);
extern size_t b64url(const unsigned char *in, size_t n, char *out);
extern size_t b64std(const unsigned char *in, size_t n, char *out);
extern int	mint_token(const char *secret, const char *sub, long exp,
					   char *out, size_t outlen);
extern void fatal(const char *fmt,...) __attribute__((format(printf, 1, 2), noreturn));

/* --- CPU accounting of the server processes over the measured window --- */

typedef struct cpu_task
{
	int			tid;
	bool		gen;			/* one of the procs, not the server */
	double		run;			/* seconds on CPU */
	double		wait;			/* seconds runnable but not running */
} cpu_task;

typedef struct cpu_snap
{
	cpu_task   *tasks;			/* every thread of the watched processes */
	int			n_tasks;
	int			cap_tasks;
	double		machine_busy;	/* jiffies, all CPUs, steal excluded */
	double		machine_steal;	/* jiffies the hypervisor took */
	double		machine_total;
} cpu_snap;

/* what the watched processes used between two snapshots */
typedef struct cpu_use
{
	double		server_run;
	double		server_wait;
	int			server_tasks;
	double		gen_run;
	double		machine_busy;	/* share of all CPUs */
	double		machine_steal;	/* share of all CPUs taken by the hypervisor */
} cpu_use;

extern void cpu_take(cpu_snap *s, const char *watch, const int *kids, int nkids);
extern cpu_use cpu_diff(const cpu_snap *a, const cpu_snap *b);
extern void cpu_free(cpu_snap *s);

/* the proc's main: connects, runs, checks, writes its result to out_fd */
extern int	proc_main(const cl_config *cfg, int proc, int nprocs,
					  int ctl_in, int ctl_out);

#endif							/* CHATLOAD_H */
