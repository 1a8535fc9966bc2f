/*
 * The end-to-end harness (harness.h): a real relaisd per test, its log,
 * librelais agents and raw sockets.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <msgpack.h>
#include <zmq.h>

#include "harness.h"
#include "keyfile.h"
#include "relais_json.h"
#include "relais_proto.h"

#define POLL_MS         10
#define LOG_TAIL_LINES  25

static struct e2e_broker *current;
static bool current_failed;     /* e2e_fail() ran: keep the folder */

/* ------------------------------------------------------------------ */
/* Small things                                                        */

long
e2e_env_long(const char *name, long dflt)
{
	const char *s = getenv(name);
	char *end;
	long v;

	if (s == NULL || *s == '\0')
		return dflt;
	v = strtol(s, &end, 10);
	return *end == '\0' && v > 0 ? v : dflt;
}

const char *
e2e_json_str(const json_t *j)
{
	static char buf[2048];
	char *s;

	if (j == NULL)
		return "(null)";
	s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
	snprintf(buf, sizeof(buf), "%s", s != NULL ? s : "(unprintable)");
	free(s);
	return buf;
}

static void
print_log_tail(struct e2e_broker *b)
{
	char *text, *p;
	int lines = 0;

	if (b == NULL || (text = e2e_log_read(b)) == NULL)
		return;
	p = text + strlen(text);
	while (p > text && lines <= LOG_TAIL_LINES)
		if (*--p == '\n')
			lines++;
	if (*p == '\n')
		p++;
	/* Line by line: cmocka's print_error() cuts messages at 1 KiB. */
	print_error("--- last lines of %s:\n", b->log);
	while (*p != '\0') {
		size_t len = strcspn(p, "\n");
		print_error("%.*s\n", (int)(len < 1000 ? len : 1000), p);
		p += len;
		if (*p == '\n')
			p++;
	}
	print_error("--- end of log\n");
	free(text);
}

void
e2e_fail(const char *file, int line, const char *what, const char *fmt, ...)
{
	char msg[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	print_error("%s:%d: check failed: %s\n    %s\n", file, line, what, msg);
	print_log_tail(current);
	current_failed = true;
	_fail(file, line);
	abort();        /* _fail does not return; this tells the compiler */
}

/* ------------------------------------------------------------------ */
/* Files                                                               */

char *
e2e_read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (f == NULL)
		return NULL;
	for (;;) {
		if (cap - len < 65536) {
			char *nb = realloc(buf, cap + 65536 + 1);
			if (nb == NULL)
				break;
			buf = nb;
			cap += 65536;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	fclose(f);
	if (buf != NULL)
		buf[len] = '\0';
	return buf;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* ------------------------------------------------------------------ */
/* The broker                                                          */

const char *
e2e_bin_dir(void)
{
	const char *d = getenv("RELAIS_BIN");

	return d != NULL && *d != '\0' ? d : "bin";
}

int
e2e_run(const char *cmd, char *out, size_t outlen)
{
	FILE *p = popen(cmd, "r");
	size_t n = 0;
	int status;

	if (p == NULL)
		fail_msg("cannot run %s: %s", cmd, strerror(errno));
	while (n + 1 < outlen && fgets(out + n, (int)(outlen - n), p) != NULL)
		n += strlen(out + n);
	out[n] = '\0';
	status = pclose(p);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void
make_keys(const char *base, char pub[41], char sec[41])
{
	char path[400], err[256];

	if (keyfile_generate(base, err, sizeof(err)) != 0)
		e2e_fail(__FILE__, __LINE__, "keyfile_generate", "%s: %s", base, err);
	snprintf(path, sizeof(path), "%s.pub", base);
	if (keyfile_read(path, pub, err, sizeof(err)) != 0)
		e2e_fail(__FILE__, __LINE__, "keyfile_read", "%s: %s", path, err);
	snprintf(path, sizeof(path), "%s.key", base);
	if (keyfile_read(path, sec, err, sizeof(err)) != 0)
		e2e_fail(__FILE__, __LINE__, "keyfile_read", "%s: %s", path, err);
}

struct e2e_broker *
e2e_broker_new(const char *extra)
{
	struct e2e_broker *b = calloc(1, sizeof(*b));
	const char *tmp = getenv("TMPDIR");
	char base[400];

	e2e_assert(b != NULL, "out of memory");
	current = b;
	current_failed = false;
	snprintf(b->dir, sizeof(b->dir), "%s/relais-e2e-XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	e2e_assert(mkdtemp(b->dir) != NULL, "mkdtemp %s: %s", b->dir,
	    strerror(errno));
	snprintf(b->conf, sizeof(b->conf), "%s/relais.conf", b->dir);
	snprintf(b->log, sizeof(b->log), "%s/broker.log", b->dir);
	snprintf(b->ready, sizeof(b->ready), "%s/ready", b->dir);
	snprintf(b->data, sizeof(b->data), "%s/data", b->dir);
	e2e_assert(mkdir(b->data, 0700) == 0, "mkdir %s: %s", b->data,
	    strerror(errno));
	snprintf(base, sizeof(base), "%s/broker", b->dir);
	make_keys(base, b->broker_pub, (char[41]){ 0 });
	if (extra != NULL)
		snprintf(b->extra, sizeof(b->extra), "%s", extra);
	return b;
}

struct e2e_agent *
e2e_agent_add(struct e2e_broker *b, const char *id, const char *kind,
    bool registered)
{
	struct e2e_agent *a;
	char base[400];

	e2e_assert(b->nagents < E2E_MAX_AGENTS, "at most %d agents",
	    E2E_MAX_AGENTS);
	a = &b->agents[b->nagents++];
	snprintf(a->id, sizeof(a->id), "%s", id);
	snprintf(a->kind, sizeof(a->kind), "%s", kind);
	a->registered = registered;
	snprintf(base, sizeof(base), "%s/agent-%s", b->dir, id);
	make_keys(base, a->pub, a->sec);
	return a;
}

struct e2e_agent *
e2e_agent(struct e2e_broker *b, const char *id)
{
	for (size_t i = 0; i < b->nagents; i++)
		if (strcmp(b->agents[i].id, id) == 0)
			return &b->agents[i];
	e2e_fail(__FILE__, __LINE__, "e2e_agent", "no agent %s in this test", id);
}

/*
 * E2E_DURABILITY=commit runs every test's broker with one LMDB commit per
 * pass (make test-commit), E2E_DURABILITY=wal with the write-ahead log (the
 * default), unless the test chooses its durability in extra.  The log is
 * kept small: its file is written whole when created, and tests go
 * through checkpoints when it fills.
 */
static const char *
durability_line(const struct e2e_broker *b)
{
	const char *d = getenv("E2E_DURABILITY");
	bool sized = strstr(b->extra, "wal_size_mb") != NULL;

	if (strstr(b->extra, "durability") != NULL || d == NULL)
		return sized ? "" : "wal_size_mb = 4\n";
	if (strcmp(d, "commit") == 0)
		return "durability = commit\n";
	if (strcmp(d, "wal") == 0)
		return sized ? "durability = wal\n" : "durability = wal\nwal_size_mb = 4\n";
	return sized ? "" : "wal_size_mb = 4\n";
}

static void
write_config(struct e2e_broker *b)
{
	FILE *f = fopen(b->conf, "w");
	const char *listen = "tcp://127.0.0.1:*";

	e2e_assert(f != NULL, "cannot write %s: %s", b->conf, strerror(errno));
	if (b->keep_port && b->starts > 0)
		listen = b->endpoint;
	fprintf(f, "# written by the e2e harness\n[broker]\n"
	    "listen = %s\n"
	    "data_dir = %s\n"
	    "secret_key_file = %s/broker.key\n"
	    "public_key_file = %s/broker.pub\n"
	    "%s%s%s", listen, b->data, b->dir, b->dir,
	    /* A test may set its own map size in extra. */
	    strstr(b->extra, "map_size_mb") != NULL ? "" : "map_size_mb = 256\n",
	    durability_line(b), b->extra);
	/* The QPVs the tests and the shared fixtures use. */
	fprintf(f, "\n[qpv]\nsanitas = Sanitas\nrochepinard = Rochepinard\n"
	    "europe-chateaubriand = Europe - Chateaubriand\neurope = Europe\n"
	    "fontaines = Fontaines\nrives-du-cher = Rives du Cher\n"
	    "maryse-bastie = Maryse Bastié\n");
	if (b->rules[0] != '\0')
		fprintf(f, "\n[rules]\n%s", b->rules);
	for (size_t i = 0; i < b->nagents; i++) {
		const struct e2e_agent *a = &b->agents[i];

		if (!a->registered)
			continue;
		fprintf(f, "\n[agent %s]\nname = Test agent %s\nkind = %s\n"
		    "public_key = %s\n", a->id, a->id, a->kind, a->pub);
	}
	e2e_assert(fclose(f) == 0, "cannot write %s: %s", b->conf,
	    strerror(errno));
}

static pid_t
spawn(struct e2e_broker *b, char *const argv[], int out_fd)
{
	pid_t pid = fork();

	e2e_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		int fd = open(b->log, O_WRONLY | O_CREAT | O_APPEND, 0600);

		/* Never outlive the test program, whatever happens to it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd >= 0) {
			dup2(fd, 2);
			close(fd);
		}
		if (out_fd >= 0)
			dup2(out_fd, 1);
		else if ((fd = open("/dev/null", O_WRONLY)) >= 0)
			dup2(fd, 1);
		if (b->files_hard != 0) {
			struct rlimit rl = { b->files_soft, b->files_hard };

			if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
				dprintf(2, "e2e: setrlimit: %s\n", strerror(errno));
				_exit(127);
			}
		}
		/* Nothing of the test program's (its client sockets) goes along. */
		for (fd = 3; fd < 1024; fd++)
			close(fd);
		execv(argv[0], argv);
		dprintf(2, "e2e: cannot run %s: %s (set RELAIS_BIN)\n", argv[0],
		    strerror(errno));
		_exit(127);
	}
	return pid;
}

static const char *
describe_status(int status)
{
	static char buf[64];

	if (WIFEXITED(status))
		snprintf(buf, sizeof(buf), "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, sizeof(buf), "killed by signal %d (%s)",
		    WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(buf, sizeof(buf), "wait status %#x", status);
	return buf;
}

bool
e2e_try_start(struct e2e_broker *b, char *why, size_t whylen)
{
	char path[512];
	char *argv[7];
	int64_t deadline;

	if (b->pid != 0) {
		snprintf(why, whylen, "the broker is already running (pid %d)",
		    (int)b->pid);
		return false;
	}
	write_config(b);
	unlink(b->ready);
	snprintf(path, sizeof(path), "%s/relaisd", e2e_bin_dir());
	argv[0] = path;
	argv[1] = "-c";
	argv[2] = b->conf;
	argv[3] = "--ready-file";
	argv[4] = b->ready;
	argv[5] = NULL;
	b->pid = spawn(b, argv, -1);
	b->starts++;

	deadline = rl_mono_ms() + E2E_READY_MS;
	for (;;) {
		int status;
		char *text = e2e_read_file(b->ready);

		if (text != NULL) {
			text[strcspn(text, "\r\n")] = '\0';
			if (strncmp(text, "tcp://127.0.0.1:", 16) != 0) {
				snprintf(why, whylen, "ready file holds \"%.200s\", "
				    "expected a tcp://127.0.0.1 endpoint", text);
				free(text);
				e2e_kill(b);
				return false;
			}
			snprintf(b->endpoint, sizeof(b->endpoint), "%s", text);
			free(text);
			return true;
		}
		if (waitpid(b->pid, &status, WNOHANG) == b->pid) {
			b->pid = 0;
			snprintf(why, whylen, "relaisd (%s) ended before it was "
			    "ready: %s", path, describe_status(status));
			return false;
		}
		if (rl_mono_ms() > deadline) {
			e2e_kill(b);
			snprintf(why, whylen, "no ready file %s within %d ms",
			    b->ready, E2E_READY_MS);
			return false;
		}
		rl_sleep_ms(POLL_MS);
	}
}

void
e2e_start(struct e2e_broker *b)
{
	char why[600];

	if (!e2e_try_start(b, why, sizeof(why)))
		e2e_fail(__FILE__, __LINE__, "broker start", "%s", why);
}

void
e2e_reload(struct e2e_broker *b)
{
	int before = e2e_log_count(b, "\"msg\":\"config.reloaded\"", NULL);
	int64_t deadline = rl_mono_ms() + E2E_WAIT_MS;

	e2e_assert(b->pid != 0, "the broker is not running");
	write_config(b);
	e2e_assert(kill(b->pid, SIGHUP) == 0, "kill(%d, SIGHUP): %s",
	    (int)b->pid, strerror(errno));
	while (e2e_log_count(b, "\"msg\":\"config.reloaded\"", NULL) <= before) {
		e2e_assert(rl_mono_ms() < deadline, "expected a config.reloaded "
		    "line within %d ms of SIGHUP", E2E_WAIT_MS);
		rl_sleep_ms(20);
	}
}

bool
e2e_running(struct e2e_broker *b)
{
	int status;

	if (b->pid == 0)
		return false;
	if (waitpid(b->pid, &status, WNOHANG) == b->pid) {
		b->pid = 0;
		print_error("note: the broker ended by itself: %s\n",
		    describe_status(status));
		return false;
	}
	return true;
}

/* Wait for pid's end; true with *status, false after timeout_ms. */
static bool
reap(pid_t pid, int timeout_ms, int *status)
{
	int64_t deadline = rl_mono_ms() + timeout_ms;

	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid)
			return true;
		if (r == -1 && errno != EINTR) {
			*status = 0;
			return true;
		}
		if (rl_mono_ms() > deadline)
			return false;
		rl_sleep_ms(POLL_MS);
	}
}

bool
e2e_try_stop(struct e2e_broker *b, char *why, size_t whylen)
{
	int status;
	pid_t pid = b->pid;

	if (pid == 0) {
		snprintf(why, whylen, "the broker is not running");
		return false;
	}
	if (kill(pid, SIGTERM) != 0) {
		snprintf(why, whylen, "kill(%d, SIGTERM): %s", (int)pid,
		    strerror(errno));
		return false;
	}
	if (!reap(pid, E2E_STOP_MS, &status)) {
		kill(pid, SIGKILL);
		reap(pid, E2E_STOP_MS, &status);
		b->pid = 0;
		snprintf(why, whylen, "relaisd did not exit within %d ms of "
		    "SIGTERM", E2E_STOP_MS);
		return false;
	}
	b->pid = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(why, whylen, "expected exit status 0 after SIGTERM, got "
		    "%s", describe_status(status));
		return false;
	}
	return true;
}

void
e2e_stop(struct e2e_broker *b)
{
	char why[256];

	if (!e2e_try_stop(b, why, sizeof(why)))
		e2e_fail(__FILE__, __LINE__, "graceful stop", "%s", why);
}

void
e2e_kill(struct e2e_broker *b)
{
	int status;

	if (b->pid == 0)
		return;
	kill(b->pid, SIGKILL);
	reap(b->pid, E2E_STOP_MS, &status);
	b->pid = 0;
}

int
e2e_verify(struct e2e_broker *b, char *out, size_t outlen)
{
	char path[512], outfile[400];
	char *argv[5], *text;
	int fd, status;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/relaisd", e2e_bin_dir());
	snprintf(outfile, sizeof(outfile), "%s/verify.out", b->dir);
	fd = open(outfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	e2e_assert(fd >= 0, "cannot create %s: %s", outfile, strerror(errno));
	argv[0] = path;
	argv[1] = "-c";
	argv[2] = b->conf;
	argv[3] = "--verify";
	argv[4] = NULL;
	pid = spawn(b, argv, fd);
	close(fd);
	if (!reap(pid, 120000, &status)) {
		kill(pid, SIGKILL);
		reap(pid, E2E_STOP_MS, &status);
		e2e_fail(__FILE__, __LINE__, "relaisd --verify",
		    "did not finish within 120 s");
	}
	text = e2e_read_file(outfile);
	snprintf(out, outlen, "%s", text != NULL ? text : "");
	free(text);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* The first sanitizer report in a log text, or NULL. */
static const char *
sanitizer_report(const char *text)
{
	static const char *const bad[] = {
		"ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer",
		"ThreadSanitizer", "MemorySanitizer",
	};
	const char *first = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *hit = strstr(text, bad[i]);
		if (hit != NULL && (first == NULL || hit < first))
			first = hit;
	}
	return first;
}

int
e2e_teardown(void **state)
{
	struct e2e_broker *b = current;
	int rc = 0, early;

	if (b == NULL)
		return 0;
	if (b->pid != 0 && waitpid(b->pid, &early, WNOHANG) == b->pid) {
		/* Nothing in a test stops the broker without reaping it. */
		print_error("teardown: the broker ended by itself during the "
		    "test: %s\n", describe_status(early));
		b->pid = 0;
		rc = -1;
	}
	if (b->pid != 0) {
		int status;

		kill(b->pid, SIGTERM);
		if (!reap(b->pid, E2E_STOP_MS, &status)) {
			kill(b->pid, SIGKILL);
			reap(b->pid, E2E_STOP_MS, &status);
			print_error("teardown: relaisd did not exit within %d ms of "
			    "SIGTERM\n", E2E_STOP_MS);
			rc = -1;
		} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			print_error("teardown: expected exit status 0 after SIGTERM, "
			    "got %s\n", describe_status(status));
			rc = -1;
		}
		b->pid = 0;
	}
	{
		char *text = e2e_log_read(b);
		const char *hit = text != NULL ? sanitizer_report(text) : NULL;

		if (hit != NULL) {
			const char *from = hit - text > 300 ? hit - 300 : text;
			print_error("teardown: sanitizer report in %s:\n%.900s\n",
			    b->log, from);
			rc = -1;
		}
		free(text);
	}
	if (rc != 0)
		print_log_tail(b);
	if (getenv("E2E_KEEP") != NULL || rc != 0 || current_failed)
		print_error("teardown: kept %s\n", b->dir);
	else
		nftw(b->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	current = NULL;
	current_failed = false;
	free(b);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The log                                                             */

char *
e2e_log_read(struct e2e_broker *b)
{
	return e2e_read_file(b->log);
}

static int
count_lines(const char *text, const char *const *needles, size_t n)
{
	int count = 0;
	const char *line = text;

	while (line != NULL && *line != '\0') {
		const char *end = strchr(line, '\n');
		size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
		bool all = true;

		for (size_t i = 0; i < n && all; i++) {
			const char *hit = memmem(line, len, needles[i], strlen(needles[i]));
			all = hit != NULL;
		}
		if (all)
			count++;
		line = end != NULL ? end + 1 : NULL;
	}
	return count;
}

static size_t
collect_needles(va_list ap, const char **needles, size_t max)
{
	size_t n = 0;
	const char *s;

	while ((s = va_arg(ap, const char *)) != NULL && n < max)
		needles[n++] = s;
	return n;
}

int
e2e_log_count(struct e2e_broker *b, ...)
{
	const char *needles[16];
	va_list ap;
	size_t n;
	char *text;
	int count;

	va_start(ap, b);
	n = collect_needles(ap, needles, 16);
	va_end(ap);
	if ((text = e2e_log_read(b)) == NULL)
		return 0;
	count = count_lines(text, needles, n);
	free(text);
	return count;
}

void
e2e_log_wait_(const char *file, int line, struct e2e_broker *b, ...)
{
	const char *needles[16];
	char want[1024] = "";
	va_list ap;
	size_t n;
	int64_t deadline = rl_mono_ms() + E2E_WAIT_MS;

	va_start(ap, b);
	n = collect_needles(ap, needles, 16);
	va_end(ap);
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(want);
		snprintf(want + len, sizeof(want) - len, "%s%s", i ? " and " : "",
		    needles[i]);
	}
	for (;;) {
		char *text = e2e_log_read(b);
		int count = text != NULL ? count_lines(text, needles, n) : 0;

		free(text);
		if (count > 0)
			return;
		if (rl_mono_ms() > deadline)
			e2e_fail(file, line, "broker log",
			    "expected a line with %s within %d ms; none came", want,
			    E2E_WAIT_MS);
		rl_sleep_ms(20);
	}
}

void
e2e_log_check_sanitizers(struct e2e_broker *b)
{
	char *text = e2e_log_read(b);
	const char *hit = text != NULL ? sanitizer_report(text) : NULL;
	char excerpt[800];

	if (hit == NULL) {
		free(text);
		return;
	}
	snprintf(excerpt, sizeof(excerpt), "%s", hit);
	free(text);
	e2e_fail(__FILE__, __LINE__, "no sanitizer report",
	    "found a sanitizer report in the broker log: %s", excerpt);
}

/* ------------------------------------------------------------------ */
/* Agents through librelais                                            */

relais_client *
e2e_try_connect(struct e2e_broker *b, const char *id,
    const struct e2e_conn *opts, char *errbuf, size_t errlen)
{
	struct e2e_agent *a = e2e_agent(b, id);
	struct relais_options o = {
		.endpoint = b->endpoint,
		.server_public_key = b->broker_pub,
		.public_key = a->pub,
		.secret_key = a->sec,
	};

	if (opts != NULL) {
		o.credit = opts->credit;
		o.send_only = opts->send_only;
		o.timeout_ms = opts->timeout_ms;
	}
	if (o.timeout_ms == 0)
		o.timeout_ms = 10000;
	return relais_connect(&o, errbuf, errlen);
}

relais_client *
e2e_connect(struct e2e_broker *b, const char *id)
{
	char err[512];
	relais_client *c = e2e_try_connect(b, id, NULL, err, sizeof(err));

	if (c == NULL)
		e2e_fail(__FILE__, __LINE__, "relais_connect",
		    "agent %s could not connect to %s: %s", id, b->endpoint, err);
	e2e_assert_str(id, relais_agent_id(c), "the id the broker welcomed us as");
	return c;
}

json_t *
e2e_submit1(relais_client *c, json_t *ev)
{
	json_t *res = NULL;
	int rc = relais_submit(c, &ev, 1, &res, 30000);

	if (rc != 0) {
		json_decref(ev);
		e2e_fail(__FILE__, __LINE__, "relais_submit",
		    "expected results within 30 s: %s", relais_errmsg(c));
	}
	json_decref(ev);
	return res;
}


void
e2e_expect_ok_(const char *file, int line, const json_t *r, const char *status)
{
	const char *got = jstr(r, "status");

	if (got == NULL || strcmp(got, status) != 0)
		e2e_fail(file, line, "event result",
		    "expected status \"%s\", got %s", status, e2e_json_str(r));
	if (!json_is_integer(json_object_get(r, "seq")) ||
	    json_integer_value(json_object_get(r, "seq")) <= 0)
		e2e_fail(file, line, "event result",
		    "expected a positive seq, got %s", e2e_json_str(r));
}

void
e2e_expect_error_(const char *file, int line, const json_t *r, int code,
    const char *field)
{
	json_t *c = json_object_get(r, "code");
	const char *st = jstr(r, "status"), *cmd = jstr(r, "cmd");
	const char *f = jstr(r, "field");

	if (r == NULL)
		e2e_fail(file, line, "error reply",
		    "expected error %d (%s), got no reply at all", code,
		    rl_code_name(code));
	if (!((st != NULL && strcmp(st, "error") == 0) ||
	    (cmd != NULL && strcmp(cmd, "error") == 0)) ||
	    !json_is_integer(c) || json_integer_value(c) != code)
		e2e_fail(file, line, "error reply",
		    "expected error %d (%s), got %s", code, rl_code_name(code),
		    e2e_json_str(r));
	if (strcmp(jstr(r, "error") ? jstr(r, "error") : "", rl_code_name(code)) != 0)
		e2e_fail(file, line, "error name",
		    "expected \"error\":\"%s\", got %s", rl_code_name(code),
		    e2e_json_str(r));
	if (field != NULL && (f == NULL || strcmp(f, field) != 0))
		e2e_fail(file, line, "error field",
		    "expected error %d on field \"%s\", got %s", code, field,
		    e2e_json_str(r));
	if (jstr(r, "message") == NULL || jstr(r, "message")[0] == '\0')
		e2e_fail(file, line, "error message",
		    "expected a message explaining error %d, got %s", code,
		    e2e_json_str(r));
}

long long
e2e_health(relais_client *c, const char *key)
{
	json_t *h = relais_query(c, "health", NULL, 20000);
	json_t *v;
	long long n;

	if (h == NULL)
		e2e_fail(__FILE__, __LINE__, "health query",
		    "expected a result, got: %s", relais_errmsg(c));
	v = json_object_get(h, key);
	if (!json_is_integer(v)) {
		char shown[2048];
		snprintf(shown, sizeof(shown), "%s", e2e_json_str(h));
		json_decref(h);
		e2e_fail(__FILE__, __LINE__, "health query",
		    "expected an integer \"%s\", got %s", key, shown);
	}
	n = json_integer_value(v);
	json_decref(h);
	return n;
}

json_t *
e2e_next_delivery(relais_client *c, int timeout_ms)
{
	json_t *d = relais_next_delivery(c, timeout_ms);

	if (d == NULL)
		e2e_fail(__FILE__, __LINE__, "relais_next_delivery",
		    "expected a delivery within %d ms, got: %s", timeout_ms,
		    relais_errmsg(c));
	return d;
}

json_t *
e2e_ev_referral(const char *event_id, const char *participant,
    const char *referral, const char *to)
{
	return json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:s}",
	    "event_id", event_id, "type", "referral.sent",
	    "occurred_at", (json_int_t)rl_wall_ms(),
	    "participant", participant, "referral", referral, "to", to,
	    "purpose", "accompagnement vers l'emploi");
}

json_t *
e2e_ev_answer(const char *type, const char *event_id, const char *participant,
    const char *referral)
{
	json_t *ev = json_pack("{s:s, s:s, s:I, s:s, s:s}",
	    "event_id", event_id, "type", type,
	    "occurred_at", (json_int_t)rl_wall_ms(),
	    "participant", participant, "referral", referral);

	if (strcmp(type, "referral.declined") == 0)
		json_object_set_new(ev, "reason", json_string("no_capacity"));
	else if (strcmp(type, "referral.cancelled") == 0)
		json_object_set_new(ev, "reason", json_string("sent by mistake"));
	return ev;
}

json_t *
e2e_ev_contact(const char *event_id, const char *participant)
{
	return json_pack("{s:s, s:s, s:I, s:s, s:s}",
	    "event_id", event_id, "type", "contact.made",
	    "occurred_at", (json_int_t)rl_wall_ms(),
	    "participant", participant, "channel", "phone");
}

/* ------------------------------------------------------------------ */
/* Raw sockets                                                         */

struct e2e_raw *
e2e_raw_open(struct e2e_broker *b, const char *id, const char *routing_id)
{
	struct e2e_agent *a = e2e_agent(b, id);
	struct e2e_raw *r = calloc(1, sizeof(*r));
	int zero = 0;

	e2e_assert(r != NULL, "out of memory");
	r->ctx = zmq_ctx_new();
	r->sock = zmq_socket(r->ctx, ZMQ_DEALER);
	e2e_assert(r->sock != NULL, "zmq_socket: %s", zmq_strerror(errno));
	zmq_setsockopt(r->sock, ZMQ_LINGER, &zero, sizeof(zero));
	if (routing_id != NULL)
		zmq_setsockopt(r->sock, ZMQ_ROUTING_ID, routing_id,
		    strlen(routing_id));
	e2e_assert(zmq_setsockopt(r->sock, ZMQ_CURVE_SERVERKEY, b->broker_pub,
	    41) == 0 &&
	    zmq_setsockopt(r->sock, ZMQ_CURVE_PUBLICKEY, a->pub, 41) == 0 &&
	    zmq_setsockopt(r->sock, ZMQ_CURVE_SECRETKEY, a->sec, 41) == 0,
	    "CURVE options: %s", zmq_strerror(errno));
	e2e_assert(zmq_connect(r->sock, b->endpoint) == 0, "connect %s: %s",
	    b->endpoint, zmq_strerror(errno));
	return r;
}

void
e2e_raw_close(struct e2e_raw **rp)
{
	struct e2e_raw *r = *rp;

	if (r == NULL)
		return;
	if (r->sock != NULL)
		zmq_close(r->sock);
	if (r->ctx != NULL)
		zmq_ctx_term(r->ctx);
	free(r);
	*rp = NULL;
}

void
e2e_raw_send_frames(struct e2e_raw *r, const void *const *bufs,
    const size_t *lens, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int flags = i + 1 < n ? ZMQ_SNDMORE : 0;

		/* Blocks until connected: the DEALER queues while it connects. */
		e2e_assert(zmq_send(r->sock, bufs[i], lens[i], flags) ==
		    (int)lens[i], "zmq_send of %zu bytes: %s", lens[i],
		    zmq_strerror(errno));
	}
}

void
e2e_raw_send(struct e2e_raw *r, const void *buf, size_t len)
{
	e2e_raw_send_frames(r, &buf, &len, 1);
}

void
e2e_raw_send_json(struct e2e_raw *r, const json_t *msg)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	char why[256];

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (json_to_msgpack(msg, &pk, why, sizeof(why)) != 0) {
		msgpack_sbuffer_destroy(&sb);
		e2e_fail(__FILE__, __LINE__, "json_to_msgpack", "%s", why);
	}
	e2e_raw_send(r, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
}

json_t *
e2e_raw_recv(struct e2e_raw *r, int timeout_ms)
{
	zmq_pollitem_t it = { .socket = r->sock, .events = ZMQ_POLLIN };
	zmq_msg_t m;
	msgpack_unpacked up;
	size_t off = 0;
	json_t *j = NULL;
	bool more;

	if (zmq_poll(&it, 1, timeout_ms) <= 0 || !(it.revents & ZMQ_POLLIN))
		return NULL;
	zmq_msg_init(&m);
	if (zmq_msg_recv(&m, r->sock, 0) < 0) {
		zmq_msg_close(&m);
		return NULL;
	}
	more = zmq_msg_more(&m);
	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, zmq_msg_data(&m), zmq_msg_size(&m), &off) ==
	    MSGPACK_UNPACK_SUCCESS && off == zmq_msg_size(&m))
		j = msgpack_to_json(&up.data);
	msgpack_unpacked_destroy(&up);
	if (j == NULL)
		j = json_pack("{s:s, s:i}", "undecodable", "broker frame",
		    "bytes", (int)zmq_msg_size(&m));
	zmq_msg_close(&m);
	if (more) {
		json_object_set_new(j, "multipart", json_true());
		do {
			zmq_msg_init(&m);
			zmq_msg_recv(&m, r->sock, 0);
			more = zmq_msg_more(&m);
			zmq_msg_close(&m);
		} while (more);
	}
	return j;
}

json_t *
e2e_raw_expect(struct e2e_raw *r, const char *cmd, int timeout_ms)
{
	int64_t deadline = rl_mono_ms() + timeout_ms;
	char seen[2048] = "";

	for (;;) {
		int64_t left = deadline - rl_mono_ms();
		json_t *m;
		const char *got;

		if (left <= 0)
			e2e_fail(__FILE__, __LINE__, "raw socket",
			    "expected a \"%s\" message within %d ms; got %s", cmd,
			    timeout_ms, seen[0] ? seen : "nothing");
		if ((m = e2e_raw_recv(r, (int)left)) == NULL)
			continue;
		got = json_string_value(json_object_get(m, "cmd"));
		if (got != NULL && strcmp(got, cmd) == 0 &&
		    json_object_get(m, "multipart") == NULL)
			return m;
		snprintf(seen, sizeof(seen), "%s", e2e_json_str(m));
		json_decref(m);
	}
}

json_t *
e2e_raw_hello(struct e2e_raw *r, uint32_t credit)
{
	json_t *hello = json_pack("{s:i, s:s, s:i}", "v", 1, "cmd", "hello",
	    "ref", 1);
	json_t *w;

	if (credit > 0)
		json_object_set_new(hello, "credit", json_integer(credit));
	e2e_raw_send_json(r, hello);
	json_decref(hello);
	w = e2e_raw_expect(r, "welcome", E2E_WAIT_MS);
	return w;
}

const char *
jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

long long
jint(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? json_integer_value(v) : -1;
}
