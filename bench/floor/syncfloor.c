/*
 * syncfloor.c
 *	  What a durable commit costs on this machine's disk, with nothing else
 *	  going on: it writes 8 kB (a WAL page) and calls fdatasync(), again and
 *	  again, as PostgreSQL does for every commit with synchronous_commit =
 *	  on (wal_sync_method = fdatasync, the Linux default).  A server that
 *	  acknowledges only committed messages waits for this; a message sent
 *	  while one flush is slow waits for it too, since WAL is flushed in
 *	  order.  So the tail of this distribution is a floor under the latency
 *	  tail of any durable chat on this disk (docs/performance.md).
 *
 *	  syncfloor [--dir DIR] [--duration S]
 *
 *	  It reports the count of flushes, p50, p99, p99.9 and max in ms, and
 *	  how many took longer than 10, 50 and 100 ms, as a summary and a JSON
 *	  line.  The file is created in DIR (default /tmp, where the benchmark
 *	  clusters live) and removed at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return (x > y) - (x < y);
}

static double
quantile(const double *sorted, size_t n, double q)
{
	size_t		i = (size_t) (q * (double) (n - 1) + 0.5);

	return n ? sorted[i < n ? i : n - 1] : 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: syncfloor [--dir DIR] [--duration S]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *dir = "/tmp";
	double		duration = 5;
	char		path[4096];
	char		page[8192];
	double	   *lat;
	size_t		n = 0,
				cap = 1 << 16;
	int			fd;
	double		t0;
	size_t		over10 = 0,
				over50 = 0,
				over100 = 0;

	for (int i = 1; i < argc; i++)
	{
		if (i + 1 >= argc)
			usage();
		if (strcmp(argv[i], "--dir") == 0)
			dir = argv[++i];
		else if (strcmp(argv[i], "--duration") == 0)
			duration = atof(argv[++i]);
		else
			usage();
	}
	if (duration <= 0)
		usage();
	snprintf(path, sizeof(path), "%s/syncfloor.%d", dir, (int) getpid());
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	lat = malloc(cap * sizeof(double));
	if (fd < 0 || lat == NULL)
	{
		perror(path);
		return 2;
	}
	memset(page, 0x5a, sizeof(page));
	/* a 1 MB file written in place, as a WAL segment is reused */
	t0 = now_s();
	while (now_s() - t0 < duration)
	{
		double		a = now_s();

		if (pwrite(fd, page, sizeof(page), (off_t) (n % 128) * sizeof(page)) !=
			(ssize_t) sizeof(page) || fdatasync(fd) != 0)
		{
			perror("write");
			unlink(path);
			return 2;
		}
		if (n == cap)
		{
			double	   *more = realloc(lat, 2 * cap * sizeof(double));

			if (more == NULL)
				break;
			lat = more;
			cap *= 2;
		}
		lat[n] = (now_s() - a) * 1000;
		over10 += lat[n] > 10;
		over50 += lat[n] > 50;
		over100 += lat[n] > 100;
		n++;
	}
	close(fd);
	unlink(path);
	qsort(lat, n, sizeof(double), cmp_double);
	printf("syncfloor: %zu fdatasync() of 8 kB in %.0f s (%s)\n", n, duration, dir);
	printf("  p50 %.3f  p99 %.3f  p99.9 %.3f  max %.1f ms; over 10 ms: %zu, "
		   "over 50 ms: %zu, over 100 ms: %zu\n",
		   quantile(lat, n, 0.5), quantile(lat, n, 0.99),
		   quantile(lat, n, 0.999), n ? lat[n - 1] : 0, over10, over50, over100);
	printf("{\"flushes\":%zu,\"duration\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
		   "\"p999_ms\":%.3f,\"max_ms\":%.3f,\"over_10ms\":%zu,\"over_50ms\":%zu,"
		   "\"over_100ms\":%zu}\n",
		   n, duration, quantile(lat, n, 0.5), quantile(lat, n, 0.99),
		   quantile(lat, n, 0.999), n ? lat[n - 1] : 0, over10, over50, over100);
	free(lat);
	return 0;
}
