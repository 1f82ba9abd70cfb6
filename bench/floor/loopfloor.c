/*
 * loopfloor.c
 *	  What the kernel alone allows on this machine: one process writes
 *	  fixed frames to many loopback TCP connections and other processes
 *	  read them, with nothing else going on: no database, no JSON, no
 *	  WebSocket parsing.  Any server that delivers frames over loopback
 *	  TCP pays at least this, so it is the floor under chat's figures
 *	  (docs/performance.md, "What the machine allows").
 *
 *	  --batch K writes K frames per send() (what a server can do when a
 *	  connection has K frames waiting); --rate R paces R frames/s in total,
 *	  spread over the connections round-robin (with --batch 1, one frame per
 *	  send(), as a server must when it delivers each message as soon as it
 *	  has it).  Without --rate it writes as fast as it can.
 *
 *	  It reports frames/s, the writer's CPU per send() and per frame, its
 *	  share of a core, and the readers' CPU, as a summary and a JSON line.
 *
 *	  loopfloor --conns 10000 --batch 1 --duration 5
 *	  loopfloor --conns 10000 --rate 285000 --duration 5
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_READERS 8

static int	conns = 10000;
static int	batch = 1;
static int	size = 400;
static double rate = 0;			/* frames/s; 0 = as fast as possible */
static double duration = 5;
static int	readers = 2;
static int	reader_nice = 10;

static volatile sig_atomic_t stop_reading;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double
cpu_s(const struct rusage *ru)
{
	return ru->ru_utime.tv_sec + ru->ru_utime.tv_usec / 1e6 +
		ru->ru_stime.tv_sec + ru->ru_stime.tv_usec / 1e6;
}

static void
die(const char *what)
{
	perror(what);
	exit(2);
}

static void
on_term(int sig)
{
	(void) sig;
	stop_reading = 1;
}

/*
 * reader connects its share of the connections, then reads whatever
 * arrives until SIGTERM, and prints the frames it read.
 */
static void
reader(int n, const struct sockaddr_in *addr, int ready_fd)
{
	int			ep = epoll_create1(0);
	static char buf[1 << 16];
	uint64_t	bytes = 0;
	struct sigaction sa;
	char		one = 1;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	if (ep < 0)
		die("epoll_create1");
	for (int i = 0; i < n; i++)
	{
		int			fd = socket(AF_INET, SOCK_STREAM, 0);
		struct epoll_event ev = {.events = EPOLLIN};

		if (fd < 0)
			die("socket");
		if (connect(fd, (const struct sockaddr *) addr, sizeof(*addr)) != 0)
			die("connect");
		fcntl(fd, F_SETFL, O_NONBLOCK);
		ev.data.fd = fd;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
			die("epoll_ctl");
	}
	if (write(ready_fd, &one, 1) != 1)
		die("write");
	while (!stop_reading)
	{
		struct epoll_event evs[256];
		int			k = epoll_wait(ep, evs, 256, 100);

		for (int i = 0; i < k; i++)
		{
			ssize_t		r;

			while ((r = read(evs[i].data.fd, buf, sizeof(buf))) > 0)
				bytes += (uint64_t) r;
		}
	}
	printf("%llu\n", (unsigned long long) (bytes / (uint64_t) size));
	fflush(stdout);
	_exit(0);
}

static void
usage(void)
{
	fprintf(stderr, "usage: loopfloor [--conns N] [--batch K] [--size BYTES] "
			"[--rate FRAMES_PER_S] [--duration S] [--readers P] [--reader-nice N]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	int			lfd;
	struct sockaddr_in addr;
	socklen_t	alen = sizeof(addr);
	int		   *fds;
	int			ready[2],
				out[2];
	pid_t		pids[MAX_READERS];
	char	   *frames;
	struct rlimit rl;
	struct rusage ru0,
				ru1;
	uint64_t	sends = 0,
				frames_sent = 0,
				eagain = 0,
				frames_read = 0;
	double		t0,
				t1,
				reader_cpu = 0;
	int			one = 1;

	for (int i = 1; i < argc; i++)
	{
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL)
			usage();
		if (strcmp(a, "--conns") == 0)
			conns = atoi(v);
		else if (strcmp(a, "--batch") == 0)
			batch = atoi(v);
		else if (strcmp(a, "--size") == 0)
			size = atoi(v);
		else if (strcmp(a, "--rate") == 0)
			rate = atof(v);
		else if (strcmp(a, "--duration") == 0)
			duration = atof(v);
		else if (strcmp(a, "--readers") == 0)
			readers = atoi(v);
		else if (strcmp(a, "--reader-nice") == 0)
			reader_nice = atoi(v);
		else
			usage();
		i++;
	}
	if (conns < 1 || batch < 1 || size < 16 || duration <= 0 ||
		readers < 1 || readers > MAX_READERS || conns < readers)
		usage();

	/* one fd per connection on each side, and some */
	rl.rlim_cur = rl.rlim_max = (rlim_t) conns + 256;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		die("setrlimit(RLIMIT_NOFILE)");

	lfd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (lfd < 0 || bind(lfd, (struct sockaddr *) &addr, sizeof(addr)) != 0 ||
		listen(lfd, 4096) != 0 ||
		getsockname(lfd, (struct sockaddr *) &addr, &alen) != 0)
		die("listen");
	if (pipe(ready) != 0 || pipe(out) != 0)
		die("pipe");

	for (int r = 0; r < readers; r++)
	{
		int			share = conns / readers + (r < conns % readers);

		pids[r] = fork();
		if (pids[r] < 0)
			die("fork");
		if (pids[r] == 0)
		{
			close(lfd);
			close(ready[0]);
			close(out[0]);
			dup2(out[1], STDOUT_FILENO);
			if (setpriority(PRIO_PROCESS, 0, reader_nice) != 0)
				die("setpriority");
			reader(share, &addr, ready[1]);
		}
	}
	close(ready[1]);
	close(out[1]);

	fds = calloc((size_t) conns, sizeof(int));
	frames = malloc((size_t) size * (size_t) batch);
	if (fds == NULL || frames == NULL)
		die("malloc");
	/* a WebSocket text frame of `size` bytes: 4-byte header, payload */
	for (int k = 0; k < batch; k++)
	{
		unsigned char *f = (unsigned char *) frames + (size_t) k * size;

		memset(f, 'x', (size_t) size);
		f[0] = 0x81;
		f[1] = 126;
		f[2] = (unsigned char) ((size - 4) >> 8);
		f[3] = (unsigned char) ((size - 4) & 0xff);
	}
	for (int i = 0; i < conns; i++)
	{
		fds[i] = accept(lfd, NULL, NULL);
		if (fds[i] < 0)
			die("accept");
		setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		fcntl(fds[i], F_SETFL, O_NONBLOCK);
	}
	for (int r = 0; r < readers; r++)
	{
		char		c;

		if (read(ready[0], &c, 1) != 1)
			die("reader failed");
	}

	getrusage(RUSAGE_SELF, &ru0);
	t0 = now_s();
	{
		int			next = 0;
		double		t = t0;

		while (t - t0 < duration)
		{
			uint64_t	due = rate > 0 ?
			(uint64_t) ((t - t0) * rate) : frames_sent + 4096;

			while (frames_sent < due)
			{
				ssize_t		w = send(fds[next], frames, (size_t) size * batch,
									 MSG_DONTWAIT | MSG_NOSIGNAL);

				if (w < 0 && errno != EAGAIN)
					die("send");
				if (w < 0)
					eagain++;
				else
				{
					/* a short write of a full buffer counts what went */
					sends++;
					frames_sent += (uint64_t) w / (uint64_t) size;
				}
				if (++next == conns)
					next = 0;
				if (w < 0 && rate <= 0)
					break;
			}
			if (rate > 0)
			{
				struct timespec ts = {0, 1000000};	/* pace in 1 ms ticks */

				nanosleep(&ts, NULL);
			}
			t = now_s();
		}
	}
	t1 = now_s();
	getrusage(RUSAGE_SELF, &ru1);

	/* let the readers drain, then collect their counts and CPU */
	{
		struct timespec ts = {0, 300000000};

		nanosleep(&ts, NULL);
	}
	for (int r = 0; r < readers; r++)
		kill(pids[r], SIGTERM);
	{
		FILE	   *f = fdopen(out[0], "r");
		unsigned long long n;

		while (f && fscanf(f, "%llu", &n) == 1)
			frames_read += n;
		if (f)
			fclose(f);
	}
	for (int r = 0; r < readers; r++)
	{
		struct rusage ru;
		int			st;

		if (wait4(pids[r], &st, 0, &ru) > 0)
			reader_cpu += cpu_s(&ru);
	}

	{
		double		wall = t1 - t0;
		double		wcpu = cpu_s(&ru1) - cpu_s(&ru0);

		printf("loopfloor: %d connections, %d-byte frames, %d per send%s\n",
			   conns, size, batch, rate > 0 ? " (paced)" : "");
		if (rate > 0)
			printf("  offered    %.0f frames/s\n", rate);
		printf("  delivered  %.0f frames/s, %.0f sends/s (%llu EAGAIN); "
			   "%llu frames read\n",
			   frames_sent / wall, sends / wall, (unsigned long long) eagain,
			   (unsigned long long) frames_read);
		printf("  writer     %.0f%% of a core: %.2f us per send, %.2f us per frame\n",
			   100 * wcpu / wall, sends ? 1e6 * wcpu / sends : 0,
			   frames_sent ? 1e6 * wcpu / frames_sent : 0);
		printf("  readers    %.0f%% of a core in all (nice %d)\n",
			   100 * reader_cpu / wall, reader_nice);
		printf("{\"conns\":%d,\"size\":%d,\"batch\":%d,\"rate\":%.0f,"
			   "\"frames_sent\":%llu,\"frames_per_s\":%.0f,\"sends_per_s\":%.0f,\"eagain\":%llu,"
			   "\"frames_read\":%llu,\"writer_cores\":%.3f,"
			   "\"writer_us_per_send\":%.3f,\"writer_us_per_frame\":%.3f,"
			   "\"reader_cores\":%.3f,\"readers\":%d,\"reader_nice\":%d}\n",
			   conns, size, batch, rate, (unsigned long long) frames_sent,
			   frames_sent / wall, sends / wall,
			   (unsigned long long) eagain, (unsigned long long) frames_read, wcpu / wall,
			   sends ? 1e6 * wcpu / sends : 0,
			   frames_sent ? 1e6 * wcpu / frames_sent : 0, reader_cpu / wall,
			   readers, reader_nice);
	}
	for (int i = 0; i < conns; i++)
		close(fds[i]);
	free(fds);
	free(frames);
	return 0;
}
