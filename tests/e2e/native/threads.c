/* Threads.
 *   threads lines           4 threads allocate at their own lines and at one shared line
 *   threads stress N [T]    T threads (default 8) each malloc N blocks; every block is
 *                           handed to the next thread, which frees it (N=0: baseline run)
 *   threads bursts N R T MS T threads each make R bursts of N malloc/free pairs with MS ms
 *                           of quiet between them (the writer's buffers grow and shrink)
 *   threads short N         N threads one after the other, each a malloc(64) (the SHORT mark) and
 *                           its free, then joined
 *   threads keyed N         N threads one after the other, each a malloc(666) (the KEYED mark)
 *                           kept as its thread-specific value, which the key's destructor
 *                           frees as the thread ends
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define MiB (1024 * 1024)
#define LINES_THREADS 4
#define LINES_N 1000
#define SHARED_N 500

static char outbuf[1 << 16];
static void *volatile sink;
static pthread_barrier_t barrier;

static void *shared_alloc(size_t n)
{
	return malloc(n); /* @SHARED */
}

/* Starts n threads running fn((void *)i), all released by one barrier; joins them. */
static void run_threads(int n, void *(*fn)(void *))
{
	pthread_t th[64];
	pthread_barrier_init(&barrier, NULL, (unsigned)n);
	for (long i = 0; i < n; i++)
		pthread_create(&th[i], NULL, fn, (void *)i);
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
}

static void *lines_worker(void *arg)
{
	int id = (int)(long)arg;
	void *kept[LINES_N / 100];
	int nk = 0;
	pthread_barrier_wait(&barrier);
	for (int k = 0; k < LINES_N; k++) {
		void *p = NULL;
		switch (id) {
		case 0:
			p = malloc(100); /* @T0 */
			break;
		case 1:
			p = malloc(200); /* @T1 */
			break;
		case 2:
			p = calloc(1, 300); /* @T2 */
			break;
		case 3:
			p = malloc(400); /* @T3 */
			break;
		}
		if (k % 100 == 0)
			kept[nk++] = p;
		else
			free(p);
		if (k < SHARED_N) {
			void *s = shared_alloc(64);
			sink = s;
			free(s);
		}
	}
	return kept[0]; /* kept blocks stay allocated until the end */
}

static int lines(void)
{
	run_threads(LINES_THREADS, lines_worker);
	void *big = malloc(8 * MiB); /* @MAIN_PEAK */
	memset(big, 1, 8 * MiB);
	free(big);
	printf("lines done\n");
	return 0;
}

/* ---- stress: single-producer single-consumer hand-over rings, no locks, no malloc ---- */

#define BACKLOG 4096

typedef struct lane {
	void **slots;             /* what thread t allocated, in order (mapped: an mmap block, not among the mallocs) */
	_Atomic long produced;    /* written by t */
	_Atomic long consumed;    /* written by t + 1 */
	char pad[64];
} lane_t;

static lane_t *lanes;
static int n_threads;
static long n_per_thread;

static size_t stress_size(int t, long i)
{
	return 16 + (size_t)((t * 7 + i) % 64) * 8;
}

/* frees what thread t - 1 handed over; returns how many */
static long drain(int t)
{
	lane_t *in = &lanes[(t + n_threads - 1) % n_threads];
	long c = atomic_load_explicit(&in->consumed, memory_order_relaxed);
	long p = atomic_load_explicit(&in->produced, memory_order_acquire);
	for (long i = c; i < p; i++)
		free(in->slots[i]); /* @STRESS_FREE */
	atomic_store_explicit(&in->consumed, p, memory_order_release);
	return p - c;
}

static void *stress_worker(void *arg)
{
	int t = (int)(long)arg;
	lane_t *out = &lanes[t];
	long got = 0;
	pthread_barrier_wait(&barrier);
	for (long i = 0; i < n_per_thread; i++) {
		out->slots[i] = malloc(stress_size(t, i)); /* @STRESS_MALLOC */
		if ((i & 255) == 255 || i == n_per_thread - 1) {
			atomic_store_explicit(&out->produced, i + 1, memory_order_release);
			got += drain(t);
			while (i + 1 - atomic_load_explicit(&out->consumed, memory_order_acquire) > BACKLOG) {
				got += drain(t);
				sched_yield();
			}
		}
	}
	while (got < n_per_thread) {
		long d = drain(t);
		got += d;
		if (!d)
			sched_yield();
	}
	return NULL;
}

static int stress(long n, int threads)
{
	n_threads = threads;
	n_per_thread = n;
	lanes = mmap(NULL, sizeof(lane_t) * (size_t)threads, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	for (int t = 0; t < threads; t++) {
		lanes[t].slots = mmap(NULL, sizeof(void *) * (size_t)(n ? n : 1), PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (lanes[t].slots == MAP_FAILED) {
			perror("mmap");
			return 1;
		}
	}
	run_threads(threads, stress_worker);
	printf("stress done %ld x %d\n", n, threads);
	return 0;
}

/* ---- bursts --------------------------------------------------------------------- */

static long burst_n, burst_rounds, burst_quiet_ms;

static size_t burst_size(int t, long r, long i)
{
	return 8 + (size_t)((t + r * 3 + i) % 32) * 16;
}

static void *burst_worker(void *arg)
{
	int t = (int)(long)arg;
	pthread_barrier_wait(&barrier);
	for (long r = 0; r < burst_rounds; r++) {
		for (long i = 0; i < burst_n; i++) {
			void *p = malloc(burst_size(t, r, i)); /* @BURST */
			sink = p;
			free(p);
		}
		struct timespec q = {burst_quiet_ms / 1000, (burst_quiet_ms % 1000) * 1000000L};
		nanosleep(&q, NULL);
	}
	return NULL;
}

static int bursts(long n, long rounds, int threads, long quiet_ms)
{
	burst_n = n;
	burst_rounds = rounds;
	burst_quiet_ms = quiet_ms;
	run_threads(threads, burst_worker);
	printf("bursts done\n");
	return 0;
}

static void *short_work(void *arg)
{
	void *volatile p = malloc(64); /* @SHORT */
	free(p);
	return arg;
}

/* n threads running `work`, one after the other; says "WHAT done N" */
static int one_after_another(long n, void *(*work)(void *), const char *what)
{
	for (long i = 0; i < n; i++) {
		pthread_t t;
		if (pthread_create(&t, NULL, work, NULL))
			return 1;
		pthread_join(t, NULL);
	}
	printf("%s done %ld\n", what, n);
	return 0;
}

static pthread_key_t keyed_key;

static void *keyed_work(void *arg)
{
	pthread_setspecific(keyed_key, malloc(666)); /* @KEYED */
	return arg;
}

static int keyed_threads(long n)
{
	if (pthread_key_create(&keyed_key, free))
		return 1;
	return one_after_another(n, keyed_work, "keyed");
}

int main(int argc, char **argv)
{
	setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
	if (argc >= 2 && !strcmp(argv[1], "lines"))
		return lines();
	if (argc >= 3 && !strcmp(argv[1], "stress"))
		return stress(atol(argv[2]), argc >= 4 ? atoi(argv[3]) : 8);
	if (argc >= 6 && !strcmp(argv[1], "bursts"))
		return bursts(atol(argv[2]), atol(argv[3]), atoi(argv[4]), atol(argv[5]));
	if (argc >= 3 && !strcmp(argv[1], "short"))
		return one_after_another(atol(argv[2]), short_work, "short");
	if (argc >= 3 && !strcmp(argv[1], "keyed"))
		return keyed_threads(atol(argv[2]));
	fprintf(stderr, "usage: threads lines | stress N [THREADS] | bursts N ROUNDS THREADS QUIET_MS | short N | "
			"keyed N\n");
	return 2;
}
