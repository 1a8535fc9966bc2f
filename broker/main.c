/*
 * relaisd: the relais broker.
 *
 *   relaisd [-c FILE] [--ready-file FILE]   run
 *   relaisd --check-config FILE             check a config and exit
 *   relaisd -c FILE --verify                replay the log against the state
 *   relaisd -c FILE --backup DIR            hot copy of the store
 *   relaisd -c FILE --compact DIR           rewrite the store without free pages
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "log.h"
#include "relaisd.h"

#define DEFAULT_CONFIG "config/relais.conf"

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: relaisd [-c FILE] [--ready-file FILE]\n"
	    "       relaisd --check-config FILE\n"
	    "       relaisd [-c FILE] --verify\n"
	    "       relaisd [-c FILE] --backup DIR\n"
	    "       relaisd [-c FILE] --compact DIR\n"
	    "\n"
	    "  -c, --config FILE     configuration (default %s)\n"
	    "  --ready-file FILE     write the bound endpoint there once ready\n"
	    "  --check-config FILE   print 'configuration OK' or every error\n"
	    "  --verify              rebuild every pathway from the event log and\n"
	    "                        report any difference from the stored state\n"
	    "  --backup DIR          copy the store into DIR (which must be empty),\n"
	    "                        consistently, while the broker keeps running\n"
	    "  --compact DIR         rewrite the store into DIR with only its live\n"
	    "                        records: no free pages, no erased bytes left\n",
	    DEFAULT_CONFIG);
}

static struct config *
load(const char *path)
{
	char errs[8192];
	struct config *cfg = config_load(path, errs, sizeof(errs));

	if (cfg == NULL)
		fprintf(stderr, "%s", errs);
	return cfg;
}

/*
 * Every connection costs a file descriptor, and connections that never
 * finish their handshake hold one until it times out: take all the
 * descriptors the system allows (the soft limit up to the hard one).
 */
static void
raise_file_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	log_info("broker.files", "limit", LOG_U64((uint64_t)rl.rlim_cur),
	    "hint", LOG_STR("each connection holds one; raise the hard limit "
	    "(LimitNOFILE=) for more"), NULL);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "ready-file", required_argument, NULL, 'r' },
		{ "check-config", required_argument, NULL, 'k' },
		{ "verify", no_argument, NULL, 'v' },
		{ "backup", required_argument, NULL, 'b' },
		{ "compact", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = DEFAULT_CONFIG, *ready = NULL, *check = NULL;
	const char *backup = NULL, *compact = NULL;
	bool verify = false;
	struct config *cfg;
	struct broker b;
	int c, rc;

	/*
	 * Whatever reads our stderr (a pipe to tee, a log shipper) may go
	 * away: a write to it must fail with EPIPE, which the log counts, and
	 * not kill the broker.  libzmq sends with MSG_NOSIGNAL already.
	 */
	signal(SIGPIPE, SIG_IGN);

	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'r': ready = optarg; break;
		case 'k': check = optarg; break;
		case 'v': verify = true; break;
		case 'b': backup = optarg; break;
		case 'o': compact = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (check != NULL) {
		if ((cfg = load(check)) == NULL)
			return 1;
		printf("configuration OK\n");
		/* What events and coverage are checked against, for the operator to see. */
		for (size_t i = 0; i < cfg->nqpvs; i++)
			printf("qpv %s = %s\n", cfg->qpvs[i].code,
			    cfg->qpvs[i].name);
		config_free(&cfg);
		return 0;
	}
	if ((cfg = load(path)) == NULL)
		return 1;
	if (verify) {
		rc = verify_store(cfg, stdout);
		config_free(&cfg);
		return rc == 0 ? 0 : 1;
	}
	if (backup != NULL || compact != NULL) {
		rc = backup != NULL ? backup_store(cfg, backup, stdout) :
		    compact_store(cfg, compact, stdout);
		config_free(&cfg);
		return rc == 0 ? 0 : 1;
	}

	log_init(stderr, (enum log_level)log_level_from_name(cfg->log_level));
	raise_file_limit();
	b.pass.pw = NULL;
	if (broker_init(&b, cfg, ready) == -1 ||
	    (b.pass.pw = malloc(sizeof(*b.pass.pw))) == NULL) {
		log_flush();
		broker_free(&b);
		config_free(&b.cfg);
		return 1;
	}
	rc = broker_run(&b);
	free(b.pass.pw);
	cfg = b.cfg;            /* a reload may have replaced it */
	broker_free(&b);
	config_free(&cfg);
	return rc == 0 ? 0 : 1;
}
